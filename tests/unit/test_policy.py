"""Policy checks over the rendered task definition and service, each rejecting and accepting."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.domain.names import names_for
from chalicelib.engine.converge.targets import service_before_creation
from chalicelib.engine.policy import (
    OperatorPolicy,
    Violation,
    check,
    failure_reason,
    image_reference_tag,
)
from chalicelib.engine.repoconfig import RepoConfig, RepoDefaults, load_repo_config
from chalicelib.engine.taskdef import RenderContext, render_service, render_task_definition
from tests.unit.test_repoconfig import minimal_settings

SHA = "b" * 40
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:{SHA}"
SSM_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/db-url"
OPERATOR = OperatorPolicy()


def rendered(
    config_text: str | None = None, *, image: str = IMAGE, operator: OperatorPolicy = OPERATOR
) -> tuple[dict[str, Any], dict[str, Any], RepoConfig]:
    """The task definition and service converge would send, for a branchenv.yml text."""
    settings = minimal_settings()
    config = load_repo_config(config_text, defaults=RepoDefaults())
    names = names_for("demo", "acme/shop", "feature/login", settings.preview_domain)
    ctx = RenderContext(settings=settings, names=names, sha=SHA, image_uri=image, config=config)
    task_definition = render_task_definition(ctx)
    service = render_service(
        ctx,
        service_name=names.service(1),
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/demo:1",
        target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1",
    )
    return task_definition, service, config


def violations_for(
    config_text: str | None = None, *, image: str = IMAGE, operator: OperatorPolicy = OPERATOR
) -> list[Violation]:
    task_definition, service, config = rendered(config_text, image=image, operator=operator)
    return check(task_definition, service, config=config, operator=operator)


def names_of(violations: list[Violation]) -> list[str]:
    return [v.check for v in violations]


# ---------------------------------------------------------------- a clean deploy passes


def test_default_rendering_passes_every_check() -> None:
    assert violations_for() == []


def test_full_config_within_limits_passes() -> None:
    text = f"service:\n  cpu: 1024\n  memory: 4096\nenv:\n  API_URL: x\nsecrets:\n  DB: {SSM_ARN}\n"
    assert violations_for(text) == []


# ---------------------------------------------------------------- image tag


@pytest.mark.parametrize(
    "image",
    [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:latest",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo",
        "localhost:5000/demo",
        "demo",
    ],
)
def test_latest_or_untagged_image_is_rejected(image: str) -> None:
    violations = violations_for(image=image)
    assert names_of(violations) == ["image-tag"]
    assert image in violations[0].message


@pytest.mark.parametrize(
    "image",
    [
        IMAGE,
        "localhost:5000/demo:v1.2.3",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo@sha256:" + "c" * 64,
        "demo:latest@sha256:" + "c" * 64,
    ],
)
def test_pinned_image_is_accepted(image: str) -> None:
    assert violations_for(image=image) == []


def test_registry_port_is_not_a_tag() -> None:
    assert image_reference_tag("registry.local:5000/team/app") is None


# ---------------------------------------------------------------- size limits


def test_cpu_above_the_maximum_is_rejected() -> None:
    violations = violations_for(
        "service:\n  cpu: 2048\n  memory: 4096\n", operator=OperatorPolicy(max_cpu=1024)
    )
    assert names_of(violations) == ["cpu-limit"]
    assert violations[0].message.startswith("service.cpu 2048 is above this installation's max")


def test_memory_above_the_maximum_is_rejected() -> None:
    violations = violations_for(
        "service:\n  cpu: 1024\n  memory: 8192\n", operator=OperatorPolicy(max_memory=4096)
    )
    assert names_of(violations) == ["memory-limit"]


def test_size_at_the_maximum_is_accepted() -> None:
    operator = OperatorPolicy(max_cpu=1024, max_memory=2048)
    assert violations_for("service:\n  cpu: 1024\n  memory: 2048\n", operator=operator) == []


def test_size_in_vcpu_and_gb_units_is_understood() -> None:
    task_definition, service, config = rendered()
    task_definition.update(cpu="4 vCPU", memory="30 GB")
    violations = check(task_definition, service, config=config, operator=OPERATOR)
    assert names_of(violations) == ["cpu-limit", "memory-limit"]


# ---------------------------------------------------------------- container port range

NARROW_PORTS = OperatorPolicy(container_ports=(8000, 9000))


def test_a_file_port_outside_the_open_range_is_rejected_naming_key_value_and_range() -> None:
    violations = violations_for("service:\n  container_port: 3000\n", operator=NARROW_PORTS)
    assert names_of(violations) == ["container-port"]
    assert violations[0].message == (
        "service.container_port 3000 in branchenv.yml is outside the ports the security groups "
        "open from the load balancers to the tasks (8000-9000), so no request or health check "
        "could reach it: set container_port between 8000 and 9000 in branchenv.yml, or ask the "
        "branchenv operator to widen the range (Terraform variable container_port_range)"
    )


@pytest.mark.parametrize("port", [8000, 8080, 9000])
def test_a_file_port_inside_the_open_range_is_accepted(port: int) -> None:
    text = f"service:\n  container_port: {port}\n"
    assert violations_for(text, operator=NARROW_PORTS) == []


def test_the_readme_port_3000_is_inside_the_default_range() -> None:
    assert violations_for("service:\n  container_port: 3000\n") == []


def test_a_default_port_outside_the_range_blames_the_installation_not_the_file() -> None:
    violations = violations_for(operator=OperatorPolicy(container_ports=(3000, 3999)))
    assert names_of(violations) == ["container-port"]
    assert violations[0].message.startswith(
        "the installation's default container port 8080 (BRANCHENV_CONTAINER_PORT) is outside"
    )


def test_a_port_edited_into_the_service_request_is_checked_too() -> None:
    task_definition, service, config = rendered()
    service["loadBalancers"][0]["containerPort"] = 22
    violations = check(task_definition, service, config=config, operator=OPERATOR)
    assert names_of(violations) == ["container-port"]
    assert "container port 22 " in violations[0].message


def test_converge_fails_a_port_outside_the_range_before_any_aws_change() -> None:
    settings = minimal_settings(container_ports=(8000, 9000))
    operator = OperatorPolicy.from_settings(settings)
    config = load_repo_config("service:\n  container_port: 3000\n", defaults=RepoDefaults())
    names = names_for("demo", "acme/shop", "feature/login", settings.preview_domain)
    ctx = RenderContext(settings=settings, names=names, sha=SHA, image_uri=IMAGE, config=config)
    violations = check(
        render_task_definition(ctx), service_before_creation(ctx), config=config, operator=operator
    )
    reason = failure_reason(violations)
    assert reason.startswith("policy check failed: service.container_port 3000 in branchenv.yml")


# ---------------------------------------------------------------- secret prefixes


def test_secret_outside_the_allowed_prefixes_is_rejected() -> None:
    operator = OperatorPolicy(
        allowed_secret_prefixes=("arn:aws:ssm:us-east-1:123456789012:parameter/other/",)
    )
    violations = violations_for(f"secrets:\n  DB: {SSM_ARN}\n", operator=operator)
    assert names_of(violations) == ["secret-prefix"]
    assert violations[0].message.startswith(f"secret DB refers to {SSM_ARN}, outside")


def test_secret_inside_the_allowed_prefixes_is_accepted() -> None:
    operator = OperatorPolicy(
        allowed_secret_prefixes=("arn:aws:ssm:us-east-1:123456789012:parameter/demo/",)
    )
    assert violations_for(f"secrets:\n  DB: {SSM_ARN}\n", operator=operator) == []


# ---------------------------------------------------------------- env names like secrets


@pytest.mark.parametrize(
    "name", ["API_TOKEN", "CLIENT_SECRET", "DB_PASSWORD", "PASSWORDS", "AWS_KEY"]
)
def test_plain_env_that_looks_like_a_secret_is_rejected(name: str) -> None:
    violations = violations_for(f"env:\n  {name}: s3cr3t-value\n")
    assert names_of(violations) == ["env-secret-name"]
    assert violations[0].message == (
        f"env {name} looks like a secret: move it to `secrets:` as an SSM or Secrets Manager ARN"
    )


def test_violation_never_shows_the_env_value() -> None:
    violations = violations_for("env:\n  API_TOKEN: ghp_realtokenvalue\n")
    assert "ghp_realtokenvalue" not in failure_reason(violations)


@pytest.mark.parametrize("name", ["TOKEN_URL", "KEYCLOAK_URL", "SECRETARY", "API_URL"])
def test_plain_env_with_a_harmless_name_is_accepted(name: str) -> None:
    assert violations_for(f"env:\n  {name}: x\n") == []


def test_secret_like_name_is_fine_as_a_secret() -> None:
    assert violations_for(f"secrets:\n  API_TOKEN: {SSM_ARN}\n") == []


# ---------------------------------------------------------------- privileged, host network


def test_privileged_container_is_rejected() -> None:
    task_definition, service, config = rendered()
    task_definition["containerDefinitions"][0]["privileged"] = True
    violations = check(task_definition, service, config=config, operator=OPERATOR)
    assert names_of(violations) == ["privileged"]


def test_unprivileged_container_is_accepted() -> None:
    task_definition, service, config = rendered()
    task_definition["containerDefinitions"][0]["privileged"] = False
    assert check(task_definition, service, config=config, operator=OPERATOR) == []


def test_host_networking_is_rejected() -> None:
    task_definition, service, config = rendered()
    task_definition["networkMode"] = "host"
    violations = check(task_definition, service, config=config, operator=OPERATOR)
    assert names_of(violations) == ["host-network"]


def test_host_pid_namespace_is_rejected() -> None:
    task_definition, service, config = rendered()
    task_definition["pidMode"] = "host"
    violations = check(task_definition, service, config=config, operator=OPERATOR)
    assert names_of(violations) == ["host-pid"]


def test_awsvpc_networking_is_accepted() -> None:
    task_definition, service, config = rendered()
    assert task_definition["networkMode"] == "awsvpc"
    assert check(task_definition, service, config=config, operator=OPERATOR) == []


# ---------------------------------------------------------------- operator checks


def require_two_tasks(
    task_definition: Any, service: Any, *, config: RepoConfig, operator: OperatorPolicy
) -> list[Violation]:
    if service.get("desiredCount", 0) < 2:
        return [Violation("two-tasks", "set service.desired_count to 2 or more")]
    return []


def broken_check(task_definition: Any, service: Any, **_: Any) -> list[Violation]:
    raise KeyError("oops")


def wrong_return_check(task_definition: Any, service: Any, **_: Any) -> Any:
    return "looks fine to me"


def test_operator_check_can_reject() -> None:
    operator = OperatorPolicy(checks=(require_two_tasks,))
    violations = violations_for(operator=operator)
    assert violations == [Violation("two-tasks", "set service.desired_count to 2 or more")]


def test_operator_check_can_accept() -> None:
    operator = OperatorPolicy(checks=(require_two_tasks,))
    assert violations_for("service:\n  desired_count: 2\n", operator=operator) == []


def test_operator_check_that_raises_fails_the_deploy_with_a_readable_reason() -> None:
    violations = violations_for(operator=OperatorPolicy(checks=(broken_check,)))
    assert names_of(violations) == ["tests.unit.test_policy:broken_check"]
    assert "could not run (KeyError); ask the branchenv operator" in violations[0].message


def test_operator_check_that_returns_garbage_fails_the_deploy() -> None:
    violations = violations_for(operator=OperatorPolicy(checks=(wrong_return_check,)))
    assert "did not return a list of Violation" in violations[0].message


# ---------------------------------------------------------------- the verdict


def test_failure_reason_lists_every_violation() -> None:
    violations = violations_for("env:\n  API_TOKEN: x\n", image="demo:latest")
    reason = failure_reason(violations)
    assert reason.startswith("2 policy checks failed: container app image demo:latest uses")
    assert "env API_TOKEN looks like a secret" in reason


def test_failure_reason_for_one_violation() -> None:
    reason = failure_reason(violations_for(image="demo:latest"))
    assert reason.startswith("policy check failed: container app image demo:latest")


def test_checks_do_not_change_the_requests() -> None:
    task_definition, service, config = rendered("env:\n  API_TOKEN: x\n")
    before = copy.deepcopy((task_definition, service))
    check(task_definition, service, config=config, operator=OPERATOR)
    assert (task_definition, service) == before


def test_what_would_be_deployed_is_checked_before_anything_exists() -> None:
    settings = minimal_settings()
    config = load_repo_config("env:\n  API_TOKEN: x\n", defaults=RepoDefaults())
    names = names_for("demo", "acme/shop", "feature/login", settings.preview_domain)
    ctx = RenderContext(settings=settings, names=names, sha=SHA, image_uri=IMAGE, config=config)
    violations = check(
        render_task_definition(ctx), service_before_creation(ctx), config=config, operator=OPERATOR
    )
    assert names_of(violations) == ["env-secret-name"]
