"""The dashboard's ``dashboard_auth = "iam"`` mode: the API body Terraform deploys.

:func:`dashboard_auth_swagger` rewrites the OpenAPI body Chalice generated into a
Terraform template that, in "iam" mode, requires AWS_IAM on every API method but the
GitHub webhook (:data:`OPEN_METHODS`). The override (:mod:`chalicelib.tools.deploy.override`)
puts it in place of Chalice's :data:`SWAGGER_LOCAL`.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.tools.deploy.errors import DeployError

# The dashboard's "iam" mode. Chalice puts the API's OpenAPI 2 body in this local (also the
# md5 that redeploys the stage). IAM authorization is a security scheme of type apiKey with
# x-amazon-apigateway-authtype awsSigv4 (API Gateway developer guide,
# "x-amazon-apigateway-authtype property"; what Chalice's IAMAuthorizer writes), named by
# each method's `security`. GitHub cannot sign with SigV4: the webhook stays open and
# proves itself with its HMAC signature.
SWAGGER_LOCAL = "chalice_api_swagger"
SIGV4 = "sigv4"
SIGV4_SCHEME = {
    "in": "header",
    "type": "apiKey",
    "name": "Authorization",
    "x-amazon-apigateway-authtype": "awsSigv4",
}
OPEN_METHODS = frozenset({("/github/webhook", "post")})
IAM_MODE = 'var.dashboard_auth == "iam"'


def dashboard_auth_swagger(swagger_text: str) -> str:
    """A Terraform template of the API body: ``swagger_text`` as Chalice wrote it, or, when
    the installation's dashboard_auth is "iam", the same API with AWS_IAM on every method
    but :data:`OPEN_METHODS`. A Terraform override may replace a local, never add one, so
    both bodies sit in one ``%{ if }`` template."""
    swagger = json.loads(swagger_text)
    paths: dict[str, dict[str, Any]] = swagger.get("paths", {})
    missing = [f"{m.upper()} {p}" for p, m in OPEN_METHODS if m not in paths.get(p, {})]
    if missing:
        raise DeployError(
            f"the API has no {', '.join(sorted(missing))}: update OPEN_METHODS in "
            "chalicelib/tools/deploy/dashboard_auth.py, or "
            'dashboard_auth = "iam" would lock GitHub out'
        )
    for path, methods in paths.items():
        for method, operation in methods.items():
            if isinstance(operation, dict) and (path, method) not in OPEN_METHODS:
                operation["security"] = [{SIGV4: []}]
    swagger.setdefault("securityDefinitions", {})[SIGV4] = SIGV4_SCHEME
    return f"%{{ if {IAM_MODE} }}{json.dumps(swagger)}%{{ else }}{swagger_text}%{{ endif }}"
