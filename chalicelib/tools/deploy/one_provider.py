"""Step 1b of a deploy: the Chalice package rewritten for one provider and no deprecation.

``chalice package --pkg-format terraform`` writes a template that needs a second provider,
hashicorp/null, for a ``null_data_source`` nothing reads (and that data source is itself
deprecated), and that uses two attributes the AWS provider 5 deprecates:
``aws_api_gateway_deployment.stage_name`` (with ``stage_description``) and the deployment's
``invoke_url`` (Terraform registry, hashicorp/aws, "aws_api_gateway_deployment": "use the
aws_api_gateway_stage resource instead"). An override file can change attributes but
cannot remove a data source or a provider requirement, so :func:`one_provider_template`
rewrites the generated JSON itself:

- ``data.null_data_source`` and ``required_providers.null`` are removed;
- the deployment keeps ``rest_api_id`` and gets ``triggers`` (the md5 of the API body,
  which Chalice put in ``stage_description`` so that a changed body redeploys);
- a new ``aws_api_gateway_stage`` of the same name holds the stage ``api``;
- the ``EndpointURL`` output reads the stage's ``invoke_url``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

# The stage Chalice deploys to (terraform/outputs.tf dashboard_execute_api_arn names it).
API_STAGE = "api"
DEPRECATED_DEPLOYMENT_KEYS = ("stage_name", "stage_description", "canary_settings")


def one_provider_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """``template`` with no hashicorp/null and no deprecated API Gateway attribute."""
    result = copy.deepcopy(dict(template))
    data = result.get("data", {})
    data.pop("null_data_source", None)
    if not data:
        result.pop("data", None)
    providers = result.get("terraform", {}).get("required_providers", {})
    providers.pop("null", None)
    deployments = result.get("resource", {}).get("aws_api_gateway_deployment", {})
    for name, deployment in deployments.items():
        _split_stage(result, name, deployment)
    return result


def _split_stage(template: dict[str, Any], name: str, deployment: dict[str, Any]) -> None:
    stage_name = deployment.get("stage_name", API_STAGE)
    redeploy = deployment.get("stage_description")
    for key in DEPRECATED_DEPLOYMENT_KEYS:
        deployment.pop(key, None)
    if redeploy is not None:
        deployment["triggers"] = {"redeployment": redeploy}
    stages = template["resource"].setdefault("aws_api_gateway_stage", {})
    stages[name] = {
        "stage_name": stage_name,
        "rest_api_id": deployment["rest_api_id"],
        "deployment_id": f"${{aws_api_gateway_deployment.{name}.id}}",
    }
    old = f"aws_api_gateway_deployment.{name}.invoke_url"
    new = f"aws_api_gateway_stage.{name}.invoke_url"
    for output in template.get("output", {}).values():
        if isinstance(output.get("value"), str):
            output["value"] = output["value"].replace(old, new)
