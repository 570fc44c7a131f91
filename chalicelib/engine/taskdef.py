"""Renders the ECS requests for one environment: the task definition and the service.

Pure functions: settings + names + sha + image → the exact RegisterTaskDefinition and
CreateService keyword arguments. Converge sends them, ``branchenv plan`` prints them and
the policy checks read them, so what is checked is what is deployed. The repository's
``branchenv.yml`` (a :class:`~chalicelib.engine.repoconfig.RepoConfig`) sets the service's size,
port, health path, Spot and count, and adds its ``env`` (placeholders filled in) and its
``secrets``. Nothing here calls AWS, and no secret value ever appears in a rendered
request: secrets go to ECS as ``secrets`` with ``valueFrom`` ARNs, resolved by ECS itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.names import EnvironmentNames
from chalicelib.domain.settings import Settings
from chalicelib.engine.repoconfig import RepoConfig, ServiceSpec, placeholder_values, render_env


@dataclass(frozen=True)
class RenderContext:
    """Everything a rendered request depends on."""

    settings: Settings
    names: EnvironmentNames
    sha: str
    image_uri: str
    config: RepoConfig = field(default_factory=RepoConfig)

    @property
    def preview_url(self) -> str:
        return self.settings.preview_url(self.names.host)

    @property
    def service_spec(self) -> ServiceSpec:
        """Sizes, port, health path, count and Spot: the file's, else the settings'."""
        return self.config.service_spec(self.settings)

    @property
    def container_port(self) -> int:
        return self.service_spec.container_port

    @property
    def health_check_path(self) -> str:
        return self.service_spec.health_check_path

    def environment(self) -> dict[str, str]:
        """branchenv's own variables, then the file's ``env`` with placeholders filled."""
        names = self.names
        own = {
            "BRANCH": names.branch,
            "BRANCH_SLUG": names.slug,
            "COMMIT_SHA": self.sha,
            "PREVIEW_URL": self.preview_url,
        }
        values = placeholder_values(
            branch=names.branch,
            slug=names.slug,
            sha=self.sha,
            preview_url=self.preview_url,
            repository=names.repository,
        )
        return own | {k: v for k, v in render_env(self.config, values).items() if k not in own}

    def secrets(self) -> list[dict[str, str]]:
        """Task-definition ``secrets``: names and ARNs only, never a value."""
        return [{"name": name, "valueFrom": arn} for name, arn in self.config.secrets.items()]


def ecs_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def render_task_definition(ctx: RenderContext) -> dict[str, Any]:
    """RegisterTaskDefinition arguments: one Fargate task, one container, awslogs."""
    s, names, spec = ctx.settings, ctx.names, ctx.service_spec
    environment = ctx.environment()
    request: dict[str, Any] = {
        "family": names.task_family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(spec.cpu),
        "memory": str(spec.memory),
        "executionRoleArn": s.execution_role_arn,
        "containerDefinitions": [
            {
                "name": names.container,
                "image": ctx.image_uri,
                "essential": True,
                "portMappings": [{"containerPort": ctx.container_port, "protocol": "tcp"}],
                "environment": [{"name": k, "value": v} for k, v in environment.items()],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": names.log_group,
                        "awslogs-region": s.region,
                        "awslogs-stream-prefix": names.slug,
                    },
                },
            }
        ],
        "tags": ecs_tags({**names.tags(), "branchenv:sha": ctx.sha}),
    }
    secrets = ctx.secrets()
    if secrets:
        request["containerDefinitions"][0]["secrets"] = secrets
    if s.task_role_arn:
        request["taskRoleArn"] = s.task_role_arn
    return request


def capacity_provider_strategy(
    settings: Settings, *, spot: bool | None = None
) -> list[dict[str, Any]]:
    """Fargate Spot with an on-demand base (Spot has no automatic fallback); ``spot``
    overrides the installation's setting (a repository's ``service.spot``)."""
    if not (settings.spot if spot is None else spot):
        return [{"capacityProvider": "FARGATE", "weight": 1}]
    strategy: list[dict[str, Any]] = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    if settings.on_demand_base:
        strategy.insert(
            0, {"capacityProvider": "FARGATE", "base": settings.on_demand_base, "weight": 0}
        )
    return strategy


def render_service(
    ctx: RenderContext, *, service_name: str, task_definition_arn: str, target_group_arn: str
) -> dict[str, Any]:
    """CreateService arguments (without ``cluster``): circuit breaker with rollback,
    private subnets, the target group behind the host-header rule."""
    s, names, spec = ctx.settings, ctx.names, ctx.service_spec
    return {
        "serviceName": service_name,
        "taskDefinition": task_definition_arn,
        "desiredCount": spec.desired_count,
        "capacityProviderStrategy": capacity_provider_strategy(s, spot=spec.spot),
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(s.subnets),
                "securityGroups": list(s.security_groups),
                "assignPublicIp": "DISABLED",
            }
        },
        "loadBalancers": [
            {
                "targetGroupArn": target_group_arn,
                "containerName": names.container,
                "containerPort": ctx.container_port,
            }
        ],
        "healthCheckGracePeriodSeconds": 30,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "enableECSManagedTags": True,
        "propagateTags": "SERVICE",
        "tags": ecs_tags(names.tags()),
    }
