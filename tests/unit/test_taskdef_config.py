"""The repository's branchenv.yml applied to the rendered task definition and service."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.names import names_for
from chalicelib.engine.repoconfig import CommonConfig, RepoConfig, RepoDefaults, load_repo_config
from chalicelib.engine.taskdef import RenderContext, render_service, render_task_definition
from tests.unit.test_repoconfig import minimal_settings

SHA = "d" * 40
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:{SHA}"
SSM_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/db-url"
SM_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/stripe-AbCdEf"
SETTINGS = minimal_settings(cpu=256, memory=512, container_port=8080, spot=True)
NAMES = names_for("demo", "acme/shop", "feature/login", SETTINGS.preview_domain)


NO_FILE = RepoConfig()


def context(config: RepoConfig = NO_FILE) -> RenderContext:
    return RenderContext(settings=SETTINGS, names=NAMES, sha=SHA, image_uri=IMAGE, config=config)


def load(text: str | None, defaults: RepoDefaults | None = None) -> RepoConfig:
    return load_repo_config(text, defaults=defaults or RepoDefaults())


def container(config: RepoConfig) -> dict[str, Any]:
    definition: dict[str, Any] = render_task_definition(context(config))["containerDefinitions"][0]
    return definition


def environment(config: RepoConfig) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(config)["environment"]}


def service(config: RepoConfig) -> dict[str, Any]:
    return render_service(
        context(config),
        service_name="demo-x_1",
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/demo:1",
        target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1",
    )


def test_without_a_file_the_settings_decide() -> None:
    request = render_task_definition(context())
    assert (request["cpu"], request["memory"]) == ("256", "512")
    assert "secrets" not in request["containerDefinitions"][0]
    assert service(RepoConfig())["desiredCount"] == 1


def test_secrets_are_passed_only_as_arns() -> None:
    config = load(f"secrets:\n  DATABASE_URL: {SSM_ARN}\n  STRIPE_KEY: {SM_ARN}\n")
    definition = container(config)
    assert definition["secrets"] == [
        {"name": "DATABASE_URL", "valueFrom": SSM_ARN},
        {"name": "STRIPE_KEY", "valueFrom": SM_ARN},
    ]
    assert "DATABASE_URL" not in environment(config)
    assert "STRIPE_KEY" not in environment(config)


def test_common_secrets_also_go_by_arn() -> None:
    defaults = RepoDefaults(common=CommonConfig(secrets={"SENTRY_DSN": SM_ARN}))
    definition = container(load(None, defaults))
    assert definition["secrets"] == [{"name": "SENTRY_DSN", "valueFrom": SM_ARN}]


def test_env_is_rendered_with_placeholders_after_branchenv_variables() -> None:
    config = load("env:\n  PUBLIC_URL: '${PREVIEW_URL}/app'\n  REPO: '${REPOSITORY}@${SHA}'\n")
    assert environment(config) == {
        "BRANCH": "feature/login",
        "BRANCH_SLUG": NAMES.slug,
        "COMMIT_SHA": SHA,
        "PREVIEW_URL": f"https://{NAMES.host}",
        "PUBLIC_URL": f"https://{NAMES.host}/app",
        "REPO": f"acme/shop@{SHA}",
    }


def test_service_section_sets_size_port_and_health_path() -> None:
    config = load(
        "service:\n  cpu: 1024\n  memory: 2048\n  container_port: 3000\n"
        "  health_check_path: /healthz\n"
    )
    request = render_task_definition(context(config))
    assert (request["cpu"], request["memory"]) == ("1024", "2048")
    assert request["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 3000
    assert service(config)["loadBalancers"][0]["containerPort"] == 3000
    assert context(config).health_check_path == "/healthz"


def test_service_section_sets_count_and_on_demand() -> None:
    rendered = service(load("service:\n  desired_count: 2\n  spot: false\n"))
    assert rendered["desiredCount"] == 2
    assert rendered["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]


def test_spot_stays_the_default_when_the_file_does_not_say() -> None:
    strategy = service(load("service:\n  desired_count: 2\n"))["capacityProviderStrategy"]
    assert strategy == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def test_rendered_requests_are_json() -> None:
    config = load(f"env:\n  A: '${{BRANCH}}'\nsecrets:\n  B: {SSM_ARN}\n")
    json.dumps([render_task_definition(context(config)), service(config)])


def test_ecs_holds_secrets_only_as_arns(clients: ClientFactory) -> None:
    config = load(f"env:\n  MODE: preview\nsecrets:\n  DATABASE_URL: {SSM_ARN}\n")
    ecs = clients.client("ecs")
    arn = ecs.register_task_definition(**render_task_definition(context(config)))["taskDefinition"][
        "taskDefinitionArn"
    ]
    held = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    definition = held["containerDefinitions"][0]
    assert definition["secrets"] == [{"name": "DATABASE_URL", "valueFrom": SSM_ARN}]
    assert {"name": "MODE", "value": "preview"} in definition["environment"]
    assert all(item["name"] != "DATABASE_URL" for item in definition["environment"])
