"""The root module's shape: typed and described variables, described outputs, the shared
names and outputs of chalicelib/tools/infra.py, and the queue/table settings the code relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from chalicelib.domain.names import BaseNames
from chalicelib.tools.infra import BaseInfrastructure
from tests.terraform.hcl import CHALICE_MODULE, EXAMPLE, ROOT, TERRAFORM, load_module

MODULES = [TERRAFORM, CHALICE_MODULE, EXAMPLE]
# Outputs beyond BaseInfrastructure: what a person needs to finish the setup.
EXTRA_OUTPUTS = {
    "webhook_url",
    "webhook_secret_arn",
    "github_token_arn",
    "slack_token_arn",
    "dashboard_key_arn",
    "dashboard_execute_api_arn",
    "listeners",  # the whole pool of load_balancer_count listeners
}
# Which resource carries which BaseNames name.
NAMED_RESOURCES = {
    ("aws_ecs_cluster", "previews"): ("name", "cluster"),
    ("aws_ecr_repository", "previews"): ("name", "ecr_repository"),
    ("aws_sqs_queue", "work"): ("name", "queue"),
    ("aws_sqs_queue", "work_dead_letters"): ("name", "dead_letter_queue"),
    ("aws_dynamodb_table", "environments"): ("name", "table"),
    ("aws_codebuild_project", "images"): ("name", "codebuild_project"),
    ("aws_cloudwatch_event_bus", "branchenv"): ("name", "event_bus"),
    ("aws_iam_role", "task_execution"): ("name", "execution_role"),
    ("aws_iam_role", "task"): ("name", "task_role"),
    ("aws_iam_role", "codebuild"): ("name", "codebuild_role"),
}


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    return load_module(TERRAFORM)


@pytest.mark.parametrize("directory", MODULES, ids=lambda d: d.name)
def test_every_variable_is_typed_and_described(directory: Any) -> None:
    variables = load_module(directory)["variable"]
    assert variables
    untyped = [name for name, body in variables.items() if "type" not in body]
    undescribed = [name for name, body in variables.items() if not body.get("description")]
    assert untyped == []
    assert undescribed == []


@pytest.mark.parametrize("directory", [TERRAFORM, EXAMPLE], ids=lambda d: d.name)
def test_every_output_is_described(directory: Any) -> None:
    outputs = load_module(directory)["output"]
    assert outputs
    assert [name for name, body in outputs.items() if not body.get("description")] == []


def test_outputs_are_the_base_infrastructure_fields_and_the_setup_extras(
    root: dict[str, Any],
) -> None:
    assert set(root["output"]) == set(BaseInfrastructure.output_names()) | EXTRA_OUTPUTS


def test_shared_names_follow_base_names(root: dict[str, Any]) -> None:
    names = root["locals"]["names"]
    expected = BaseNames("demo")
    properties = {n for n in dir(BaseNames) if isinstance(getattr(BaseNames, n), property)}
    assert set(names) == properties
    for key, template in names.items():
        assert template.replace("${var.app_name}", "demo") == getattr(expected, key), key


def test_resources_carry_the_shared_names(root: dict[str, Any]) -> None:
    for address, (attribute, key) in NAMED_RESOURCES.items():
        assert root["resource"][address][attribute] == f"${{local.names.{key}}}", address


def test_the_load_balancers_are_named_as_the_local_stack_names_them(root: dict[str, Any]) -> None:
    assert root["resource"][("aws_lb", "previews")]["name"] == (
        "${local.load_balancer_names[count.index]}"
    )
    names = root["locals"]["load_balancer_names"]
    assert "local.names.load_balancer" in names and '"${local.names.load_balancer}-${n}"' in names


def test_there_is_one_https_listener_per_load_balancer_and_all_are_in_the_pool(
    root: dict[str, Any],
) -> None:
    for name in ("previews",):
        assert root["resource"][("aws_lb", name)]["count"] == "${var.load_balancer_count}"
    https = root["resource"][("aws_lb_listener", "https")]
    assert https["count"] == "${var.load_balancer_count}"
    assert https["default_action"][0]["fixed_response"][0]["status_code"] == "404"
    assert "aws_acm_certificate_validation.previews.certificate_arn" in https["certificate_arn"]
    assert "aws_lb_listener.https" in root["locals"]["listeners"]
    assert root["locals"]["lambda_environment"]["BRANCHENV_LISTENERS"] == (
        "${jsonencode(local.listeners)}"
    )


def test_work_queue_visibility_is_six_worker_timeouts(root: dict[str, Any]) -> None:
    queue = root["resource"][("aws_sqs_queue", "work")]
    assert queue["visibility_timeout_seconds"] == "${6 * var.worker_timeout_seconds}"
    assert queue["fifo_queue"] is True
    assert root["module"]["chalice"]["worker_timeout_seconds"] == "${var.worker_timeout_seconds}"


def test_work_queue_redrives_to_its_fifo_dead_letter_queue(root: dict[str, Any]) -> None:
    queue = root["resource"][("aws_sqs_queue", "work")]
    dead_letters = root["resource"][("aws_sqs_queue", "work_dead_letters")]
    assert "aws_sqs_queue.work_dead_letters.arn" in queue["redrive_policy"]
    assert dead_letters["fifo_queue"] is True


def test_table_matches_the_store(root: dict[str, Any]) -> None:
    table = root["resource"][("aws_dynamodb_table", "environments")]
    assert table["hash_key"] == "pk"  # chalicelib/aws/dynamodb.py keys items by pk
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["ttl"][0] == {"attribute_name": "expires_at", "enabled": True}
    assert table["point_in_time_recovery"][0] == {"enabled": True}


def test_cluster_offers_fargate_and_fargate_spot(root: dict[str, Any]) -> None:
    providers = root["resource"][("aws_ecs_cluster_capacity_providers", "previews")]
    assert set(providers["capacity_providers"]) == {"FARGATE", "FARGATE_SPOT"}


def test_https_listener_answers_unknown_hosts_with_a_404(root: dict[str, Any]) -> None:
    listener = root["resource"][("aws_lb_listener", "https")]
    action = listener["default_action"][0]
    assert listener["protocol"] == "HTTPS"
    assert action["type"] == "fixed-response"
    assert action["fixed_response"][0]["status_code"] == "404"


def test_http_listener_redirects_to_https(root: dict[str, Any]) -> None:
    action = root["resource"][("aws_lb_listener", "http")]["default_action"][0]
    assert action["type"] == "redirect"
    assert action["redirect"][0]["protocol"] == "HTTPS"


def test_example_sets_every_required_variable() -> None:
    required = {
        name for name, body in load_module(TERRAFORM)["variable"].items() if "default" not in body
    }
    passed = set(load_module(EXAMPLE)["module"]["branchenv"])
    assert required - passed == set()


BUILD_VARIABLES = ("IMAGE_REPOSITORY_URI", "IMAGE_SHA_TAG", "IMAGE_BRANCH_TAG")


def test_buildspec_reads_the_variables_the_worker_passes() -> None:
    gateway = (ROOT / "chalicelib" / "aws" / "codebuild.py").read_text()
    buildspec = (TERRAFORM / "buildspec.yml").read_text()
    for name in BUILD_VARIABLES:
        assert f'"{name}"' in gateway, name
        assert "${" + name in buildspec, name


def _build_commands() -> str:
    buildspec = yaml.safe_load((TERRAFORM / "buildspec.yml").read_text())
    assert buildspec["version"] == 0.2
    phases = buildspec["phases"]
    return "\n".join(c for phase in phases.values() for c in phase["commands"])


def test_buildspec_pushes_the_sha_and_branch_tags() -> None:
    commands = _build_commands()
    assert "docker buildx build --push" in commands
    assert 'TAGS=(--tag "$REPOSITORY:$SHA_TAG")' in commands
    assert 'TAGS+=(--tag "$REPOSITORY:$IMAGE_BRANCH_TAG")' in commands
    assert "docker build " not in commands  # no build without the cache


def test_buildspec_reads_the_branch_cache_then_the_default_and_writes_the_branch() -> None:
    commands = _build_commands()
    reads = [line for line in commands.splitlines() if "--cache-from" in line]
    assert [r.strip() for r in reads] == [
        '--cache-from "type=registry,ref=$REPOSITORY:$CACHE_TAG" \\',
        '--cache-from "type=registry,ref=$REPOSITORY:$DEFAULT_CACHE_TAG" \\',
    ]
    assert (
        '--cache-to "type=registry,ref=$REPOSITORY:$CACHE_TAG,mode=max,'
        'image-manifest=true,oci-mediatypes=true"'
    ) in commands
    # The registry cache needs BuildKit's docker-container driver (the default docker
    # driver cannot export a cache to a registry).
    assert "docker buildx create --name branchenv --driver docker-container --use" in commands


def test_the_cache_tag_is_derived_from_the_branch_tag() -> None:
    commands = _build_commands()
    script = "\n".join(
        line
        for line in commands.splitlines()
        if line.startswith(("DEFAULT_CACHE_TAG", "CACHE_TAG"))
    )
    for branch_tag, default, expected in (
        ("branch-feature-a", "cache-main", "cache-feature-a"),
        ("", "cache-main", "cache-main"),
        ("branch-x", "", "cache-x"),
    ):
        shown = subprocess.run(
            ["bash", "-c", script + '\nprintf %s "$CACHE_TAG"'],
            env={"IMAGE_BRANCH_TAG": branch_tag, "IMAGE_DEFAULT_CACHE_TAG": default},
            capture_output=True,
            text=True,
            check=True,
        )
        assert shown.stdout == expected


def test_the_lifecycle_policy_keeps_cache_tags_and_no_preview_runs_them() -> None:
    ecr = (TERRAFORM / "ecr.tf").read_text()
    assert 'tagPrefixList = ["branch-", "cache-"]' in ecr
    # No preview runs a cache: a service's image is always the sha tag (taskdef.py).
    taskdef = (ROOT / "chalicelib" / "engine" / "taskdef.py").read_text()
    assert "cache-" not in taskdef


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run terraform fmt -recursive terraform/: {result.stdout}"


def checkov_skips() -> list[tuple[str, str, str]]:
    """(file, check id, justification) of every inline checkov skip under terraform/."""
    pattern = re.compile(r"#checkov:skip=([A-Z0-9_]+):?(.*)")
    return [
        (path.name, match.group(1), match.group(2).strip())
        for path in sorted(TERRAFORM.rglob("*.tf"))
        for match in pattern.finditer(path.read_text())
    ]


def test_every_checkov_skip_is_justified() -> None:
    skips = checkov_skips()
    assert skips
    assert [(f, check) for f, check, why in skips if len(why) < 20] == []


def test_every_checkov_skip_is_listed_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### checkov: justified skips", 1)[1]
    assert sorted({check for _, check, _ in checkov_skips() if check not in section}) == []
