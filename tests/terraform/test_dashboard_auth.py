"""The dashboard's ``iam`` mode works on AWS: with dashboard_auth = "iam" the generated
package's API body puts AWS_IAM on the three dashboard methods and never on the GitHub
webhook; with "api_key" the body is exactly what Chalice wrote. The override's template is
rendered by terraform itself from the generated package (chalicelib/tools/deploy/)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.tools.deploy import (
    GENERATED_TEMPLATE,
    OVERRIDE_FILE,
    SWAGGER_LOCAL,
    DeployError,
    chalice_override,
    dashboard_auth_swagger,
)
from tests.terraform.hcl import CHALICE_MODULE, TERRAFORM, load_module
from tests.terraform.scratch import Scratch, needs_terraform, refusal
from tests.terraform.test_network import REQUIRED

DASHBOARD = [("/", "get"), ("/api/environments", "get"), ("/api/environments/{slug}", "get")]
WEBHOOK = ("/github/webhook", "post")
INVOKE_ARN = "${aws_lambda_function.api_handler.invoke_arn}"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:demo-api"
IAM_SCHEME = {
    "in": "header",
    "type": "apiKey",
    "name": "Authorization",
    "x-amazon-apigateway-authtype": "awsSigv4",
}


def _locals_only(path: Path, target: Path) -> None:
    """The file's locals, with the API function's ARN made a variable (no provider here)."""
    text = json.dumps({"locals": json.loads(path.read_text())["locals"]})
    target.write_text(text.replace(INVOKE_ARN, "${var.invoke_arn}"))


@pytest.fixture(scope="module")
def rendered(
    package_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """The API body terraform makes of the generated package, per dashboard mode."""
    scratch = Scratch(tmp_path_factory.mktemp("api"))
    _locals_only(package_dir / GENERATED_TEMPLATE, scratch.directory / GENERATED_TEMPLATE)
    _locals_only(package_dir / OVERRIDE_FILE, scratch.directory / OVERRIDE_FILE)
    scratch.copy(CHALICE_MODULE / "variables.tf")
    scratch.write(
        "scratch.tf",
        'variable "invoke_arn" {\n  type = string\n}\n\n'
        f'output "body" {{\n  value = local.{SWAGGER_LOCAL}\n}}\n',
    )
    inputs = {
        "app_name": "demo",
        "role_arn": "r",
        "environment": {},
        "queue_arn": "q",
        "worker_timeout_seconds": 300,
        "worker_max_concurrency": 5,
        "memory_mb": 256,
        "log_group_name": "l",
        "codebuild_project": "c",
        "ecr_repository": "e",
        "cluster_arn": "c",
        "ecs_service_arn_prefix": "s",
        "ecs_task_arn_prefix": "t",
        "tags": {},
        "invoke_arn": FUNCTION_ARN,
    }
    return {
        mode: json.loads(scratch.outputs({**inputs, "dashboard_auth": mode})["body"])
        for mode in ("iam", "api_key")
    }


def _security(body: dict[str, Any], path: str, method: str) -> Any:
    return body["paths"][path][method].get("security")


@needs_terraform
def test_iam_mode_puts_the_dashboard_behind_aws_iam(rendered: dict[str, dict[str, Any]]) -> None:
    body = rendered["iam"]
    assert body["securityDefinitions"]["sigv4"] == IAM_SCHEME
    for path, method in DASHBOARD:
        assert _security(body, path, method) == [{"sigv4": []}], path


@needs_terraform
def test_iam_mode_never_puts_the_webhook_behind_aws_iam(
    rendered: dict[str, dict[str, Any]],
) -> None:
    assert _security(rendered["iam"], *WEBHOOK) is None


@needs_terraform
def test_iam_mode_leaves_no_other_method_open(rendered: dict[str, dict[str, Any]]) -> None:
    body = rendered["iam"]
    open_methods = [
        (path, method)
        for path, methods in body["paths"].items()
        for method in methods
        if _security(body, path, method) is None
    ]
    assert open_methods == [WEBHOOK]


@needs_terraform
def test_api_key_mode_keeps_the_body_chalice_wrote(
    rendered: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    chalice = template["locals"][SWAGGER_LOCAL].replace(INVOKE_ARN, FUNCTION_ARN)
    assert rendered["api_key"] == json.loads(chalice)


def test_the_override_replaces_the_api_body_chalice_generated(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    assert SWAGGER_LOCAL in template["locals"]
    assert set(override["locals"]) == {SWAGGER_LOCAL}  # an override can add no local
    deployment = template["resource"]["aws_api_gateway_deployment"]["rest_api"]
    # The API is redeployed when the mode changes: its trigger hashes the body.
    assert SWAGGER_LOCAL in deployment["triggers"]["redeployment"]
    stage = template["resource"]["aws_api_gateway_stage"]["rest_api"]
    assert stage["stage_name"] == "api"  # terraform/outputs.tf dashboard_execute_api_arn


def test_without_the_webhook_route_the_deploy_stops() -> None:
    swagger = {"paths": {"/": {"get": {}}, "/hooks/github": {"post": {}}}}
    with pytest.raises(DeployError, match=r"no POST /github/webhook.*OPEN_METHODS"):
        dashboard_auth_swagger(json.dumps(swagger))


def test_a_package_without_an_api_gets_no_api_override() -> None:
    assert "locals" not in chalice_override({"resource": {}})


def test_the_installation_passes_its_mode_to_the_lambda_and_the_package() -> None:
    root = load_module(TERRAFORM)
    assert root["locals"]["lambda_environment"]["BRANCHENV_DASHBOARD_AUTH"] == (
        "${var.dashboard_auth}"
    )
    assert root["module"]["chalice"]["dashboard_auth"] == "${var.dashboard_auth}"
    assert root["variable"]["dashboard_auth"]["default"] == "api_key"
    uses = set(
        re.findall(
            r"var\.(\w+)", dashboard_auth_swagger('{"paths": {"/github/webhook": {"post": {}}}}')
        )
    )
    assert uses == {"dashboard_auth"}


@needs_terraform
@pytest.mark.parametrize(("mode", "accepted"), [("api_key", True), ("iam", True), ("none", False)])
def test_terraform_offers_api_key_and_iam_only(tmp_path: Path, mode: str, accepted: bool) -> None:
    scratch = Scratch(tmp_path / "module")
    scratch.copy(TERRAFORM / "variables.tf")
    refused = refusal(scratch.plan({**REQUIRED, "dashboard_auth": mode}))
    assert (refused == "") is accepted, refused
