"""The Chalice package (generated offline here, as `branchenv deploy` does) and the
override chalicelib/tools/deploy/override.py writes for it wire every handler of app.py
to terraform/."""

from __future__ import annotations

import ast
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

import app
from chalicelib.tools.deploy import (
    API_HANDLER,
    PLACEHOLDER_QUEUE,
    TERRAFORM_PINS,
    DeployError,
    chalice_override,
    lambda_requirements,
    narrow_event_pattern,
    stage_project,
)
from tests.terraform.hcl import CHALICE_MODULE, ROOT, TERRAFORM, load_module

ROUTE_DECORATOR = "route"


def app_handlers() -> set[str]:
    """The Lambda functions app.py declares: one per non-route handler, one for all routes."""
    tree = ast.parse((ROOT / "app.py").read_text())
    handlers = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name):
                if call.value.id != "app":
                    continue
                handlers.add(API_HANDLER if call.attr == ROUTE_DECORATOR else node.name)
    return handlers


def test_every_handler_in_app_py_has_its_function(template: dict[str, Any]) -> None:
    assert app_handlers()
    assert set(template["resource"]["aws_lambda_function"]) == app_handlers()


def test_every_function_gets_the_installation_settings(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    functions = override["resource"]["aws_lambda_function"]
    assert set(functions) == set(template["resource"]["aws_lambda_function"])
    for name, function in functions.items():
        assert function["environment"] == {"variables": "${var.environment}"}, name
        assert function["role"] == "${var.role_arn}", name
        assert function["logging_config"]["log_group"] == "${var.log_group_name}", name
        assert function["function_name"].startswith("${var.app_name}-"), name


def test_the_api_answers_github_within_its_timeout(override: dict[str, Any]) -> None:
    api = override["resource"]["aws_lambda_function"][API_HANDLER]
    timeout = load_module(CHALICE_MODULE)["variable"]["api_timeout_seconds"]
    assert api["timeout"] == "${var.api_timeout_seconds}"
    assert timeout["default"] <= 10  # GitHub gives up on a webhook after 10 seconds


def test_the_worker_reads_the_real_work_queue(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    generated = template["resource"]["aws_lambda_event_source_mapping"]
    wired = override["resource"]["aws_lambda_event_source_mapping"]
    assert app.WORK_QUEUE == PLACEHOLDER_QUEUE
    assert set(wired) == set(generated)
    assert {m["event_source_arn"] for m in wired.values()} == {"${var.queue_arn}"}


def test_event_rules_are_named_for_the_installation(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    rules = template["resource"].get("aws_cloudwatch_event_rule", {})
    wired = override["resource"].get("aws_cloudwatch_event_rule", {})
    assert set(wired) == set(rules)
    assert all(rule["name"].startswith("${var.app_name}-") for rule in wired.values())


def test_override_replaces_the_chalice_version_pins(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    root_pins = load_module(TERRAFORM)["terraform"][0]
    assert "< 1.4" in template["terraform"]["required_version"]
    assert override["terraform"] == TERRAFORM_PINS
    assert TERRAFORM_PINS["required_version"] == root_pins["required_version"]
    aws = root_pins["required_providers"][0]["aws"]
    assert TERRAFORM_PINS["required_providers"]["aws"]["version"] == aws["version"]


def test_override_uses_only_declared_variables(package_dir: Path) -> None:
    text = (package_dir / "chalice_override.tf.json").read_text()
    used = set(re.findall(r"var\.(\w+)", text))
    declared = set(load_module(CHALICE_MODULE)["variable"])
    assert used - declared == set()


def test_root_module_passes_every_variable_the_package_needs() -> None:
    variables = load_module(CHALICE_MODULE)["variable"]
    passed = set(load_module(TERRAFORM)["module"]["chalice"]) - {"source", "depends_on"}
    required = {name for name, body in variables.items() if "default" not in body}
    assert required - passed == set()
    assert passed - set(variables) == set()


def test_deployment_zip_holds_the_app_without_the_local_stack_or_operator_tools(
    package_dir: Path,
) -> None:
    names = zipfile.ZipFile(package_dir / "deployment.zip").namelist()
    assert "app.py" in names
    assert "chalicelib/domain/settings.py" in names
    assert "chalicelib/engine/converge/kinds/service.py" in names
    assert "chalicelib/handlers/dashboard/page.html" in names  # the dashboard's template
    never_in_lambda = ("chalicelib/local/", "chalicelib/tools/")
    assert not [n for n in names if n.startswith(never_in_lambda)]
    assert not [n for n in names if "__pycache__" in n]


def test_an_sqs_handler_on_another_queue_is_refused() -> None:
    template = {
        "resource": {
            "aws_lambda_event_source_mapping": {
                "other-sqs-event-source": {
                    "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:other.fifo"
                }
            }
        }
    }
    with pytest.raises(DeployError, match=r"other\.fifo"):
        chalice_override(template)


def test_codebuild_events_are_narrowed_to_the_project() -> None:
    pattern = {"source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"]}
    narrowed = narrow_event_pattern(pattern)
    assert narrowed["detail"] == {"project-name": ["${var.codebuild_project}"]}
    assert narrowed["detail-type"] == pattern["detail-type"]


def test_ecr_events_are_narrowed_to_the_repository() -> None:
    narrowed = narrow_event_pattern({"source": ["aws.ecr"], "detail": {"action-type": ["PUSH"]}})
    assert narrowed["detail"] == {
        "action-type": ["PUSH"],
        "repository-name": ["${var.ecr_repository}"],
    }


def test_ecs_events_are_narrowed_to_the_cluster() -> None:
    narrowed = narrow_event_pattern({"source": ["aws.ecs"]})
    assert narrowed["resources"] == [
        "${var.cluster_arn}",
        {"prefix": "${var.ecs_service_arn_prefix}"},
        {"prefix": "${var.ecs_task_arn_prefix}"},
    ]


def test_a_pattern_that_already_filters_is_kept() -> None:
    pattern = {"source": ["aws.codebuild"], "detail": {"project-name": ["other"]}}
    assert narrow_event_pattern(pattern) == pattern


def test_patterns_of_other_sources_are_kept() -> None:
    pattern = {"source": ["branchenv"], "detail-type": ["Environment State Change"]}
    assert narrow_event_pattern(pattern) == pattern


def test_lambda_requirements_leave_out_what_lambda_or_the_operator_has() -> None:
    requirements = lambda_requirements((ROOT / "pyproject.toml").read_text())
    names = {r.split(">")[0].split("=")[0].split("<")[0].lower() for r in requirements}
    assert "pygithub" in names
    assert "slack-sdk" in names
    assert names.isdisjoint({"chalice", "boto3", "botocore", "python-terraform"})


def test_staging_needs_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"no app\.py"):
        stage_project(tmp_path, tmp_path / "stage", requirements=[])
