"""Every environment variable branchenv reads, read once into a frozen object.

No other module reads ``os.environ``. A missing or malformed value raises
:class:`SettingsError` naming the variable and what is wrong with it, so an operator
sees "BRANCHENV_QUEUE_URL is not set" instead of a ``KeyError`` deep in a handler.
This module must never log or print a setting's value: several of them are secrets.
Parsing one variable is chalicelib/domain/settings_env.py's job; this module says which
variables there are and checks the ones that depend on each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from chalicelib.domain.settings_env import IMAGE_SOURCES as IMAGE_SOURCES
from chalicelib.domain.settings_env import PREFIX as PREFIX
from chalicelib.domain.settings_env import EnvReader
from chalicelib.domain.settings_env import ImageSource as ImageSource
from chalicelib.domain.settings_env import Listener as Listener
from chalicelib.domain.settings_env import SettingsError as SettingsError

APP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,21}[a-z0-9]$")
DEFAULT_CONTAINER_PORT = 8080
# The ports terraform/network.tf opens from the load balancers to the tasks (its variable
# container_port_range, passed as BRANCHENV_CONTAINER_PORTS). The ALB must reach targets on
# the listener and health check ports through the security groups ("Security groups for
# your Application Load Balancer", docs.aws.amazon.com/elasticloadbalancing/latest/
# application/load-balancer-update-security-groups.html), so no other port can serve.
DEFAULT_CONTAINER_PORTS = (80, 65535)


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one branchenv installation (one application)."""

    app_name: str
    region: str
    queue_url: str
    table_name: str
    cluster: str
    vpc_id: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    listeners: tuple[Listener, ...]
    hosted_zone_id: str
    preview_domain: str
    ecr_repository: str
    execution_role_arn: str
    task_role_arn: str | None = None
    aws_endpoint_url: str | None = None
    preview_scheme: str = "https"
    preview_port: int | None = None  # in preview URLs; locally the load balancer's port
    container_port: int = DEFAULT_CONTAINER_PORT
    container_ports: tuple[int, int] = DEFAULT_CONTAINER_PORTS
    health_check_path: str = "/"
    cpu: int = 256
    memory: int = 512
    desired_count: int = 1
    spot: bool = True
    on_demand_base: int = 0
    history_days: int = 14
    webhook_secrets: tuple[str, ...] = ()
    webhook_secret_arn: str | None = None
    allowed_repositories: frozenset[str] = field(default_factory=frozenset)
    max_body_bytes: int = 5 * 1024 * 1024
    image_source: ImageSource = "build"
    codebuild_project: str | None = None
    retag_pattern: str | None = None
    github_token: str | None = None
    github_token_arn: str | None = None
    github_app_id: int | None = None
    github_app_installation_id: int | None = None
    github_app_private_key: str | None = field(default=None, repr=False)  # never echoed
    github_app_private_key_arn: str | None = None
    github_api_url: str = "https://api.github.com"
    slack_token: str | None = None
    slack_token_arn: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    event_bus: str | None = None
    dashboard_auth: Literal["none", "api_key", "iam"] = "api_key"
    dashboard_api_keys: tuple[str, ...] = ()
    dashboard_api_key_arn: str | None = None
    ttl_hours: float = 72.0
    stuck_minutes: int = 30
    max_cpu: int = 2048
    max_memory: int = 8192
    allowed_secret_prefixes: tuple[str, ...] = ()
    policy_checks: tuple[str, ...] = ()
    common_config: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise SettingsError naming the first bad one."""
        env = EnvReader(environ)
        settings = cls(
            app_name=env.pattern(
                "APP_NAME",
                APP_NAME_PATTERN,
                "lower-case letters, digits and '-', 2 to 23 characters (the load balancer's "
                "name '<app>-previews' must fit in 32), starting with a letter",
            ),
            region=env.region(),
            queue_url=env.required("QUEUE_URL"),
            table_name=env.required("TABLE"),
            cluster=env.required("CLUSTER"),
            vpc_id=env.required("VPC_ID"),
            subnets=env.csv("SUBNETS", required=True),
            security_groups=env.csv("SECURITY_GROUPS", required=True),
            listeners=env.listeners(),
            hosted_zone_id=env.required("HOSTED_ZONE_ID"),
            preview_domain=env.domain("PREVIEW_DOMAIN"),
            ecr_repository=env.required("ECR_REPOSITORY"),
            execution_role_arn=env.required("EXECUTION_ROLE_ARN"),
            task_role_arn=env.optional("TASK_ROLE_ARN"),
            aws_endpoint_url=env.optional("AWS_ENDPOINT_URL"),
            preview_scheme=env.choice("PREVIEW_SCHEME", ("https", "http"), "https"),
            preview_port=env.integer("PREVIEW_PORT", 0, low=0, high=65535) or None,
            container_port=env.integer("CONTAINER_PORT", DEFAULT_CONTAINER_PORT, low=1, high=65535),
            container_ports=env.port_range("CONTAINER_PORTS", DEFAULT_CONTAINER_PORTS),
            health_check_path=env.path("HEALTH_CHECK_PATH", "/"),
            cpu=env.integer("CPU", 256, low=256, high=16384),
            memory=env.integer("MEMORY", 512, low=512, high=122880),
            desired_count=env.integer("DESIRED_COUNT", 1, low=0, high=10),
            spot=env.boolean("SPOT", True),
            on_demand_base=env.integer("ON_DEMAND_BASE", 0, low=0, high=10),
            history_days=env.integer("HISTORY_DAYS", 14, low=1, high=3650),
            webhook_secrets=env.secrets("WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS"),
            webhook_secret_arn=env.optional("WEBHOOK_SECRET_ARN"),
            allowed_repositories=frozenset(env.csv("ALLOWED_REPOSITORIES")),
            max_body_bytes=env.integer(
                "MAX_BODY_BYTES", 5 * 1024 * 1024, low=1024, high=25 * 1024 * 1024
            ),
            image_source=env.image_source(),
            codebuild_project=env.optional("CODEBUILD_PROJECT"),
            retag_pattern=env.optional("RETAG_PATTERN"),
            github_token=env.optional("GITHUB_TOKEN"),
            github_token_arn=env.optional("GITHUB_TOKEN_ARN"),
            github_app_id=env.positive_id("GITHUB_APP_ID"),
            github_app_installation_id=env.positive_id("GITHUB_APP_INSTALLATION_ID"),
            github_app_private_key=env.private_key("GITHUB_APP_PRIVATE_KEY"),
            github_app_private_key_arn=env.optional("GITHUB_APP_PRIVATE_KEY_ARN"),
            github_api_url=env.optional("GITHUB_API_URL") or "https://api.github.com",
            slack_token=env.optional("SLACK_TOKEN"),
            slack_token_arn=env.optional("SLACK_TOKEN_ARN"),
            slack_api_url=env.optional("SLACK_API_URL") or "https://slack.com/api/",
            slack_channel=env.optional("SLACK_CHANNEL"),
            event_bus=env.optional("EVENT_BUS"),
            dashboard_auth=env.choice("DASHBOARD_AUTH", ("none", "api_key", "iam"), "api_key"),
            dashboard_api_keys=env.secrets("DASHBOARD_API_KEY", "DASHBOARD_API_KEY_PREVIOUS"),
            dashboard_api_key_arn=env.optional("DASHBOARD_API_KEY_ARN"),
            ttl_hours=env.number("TTL_HOURS", 72.0, low=0.0),
            stuck_minutes=env.integer("STUCK_MINUTES", 30, low=1, high=24 * 60),
            max_cpu=env.integer("MAX_CPU", 2048, low=256, high=16384),
            max_memory=env.integer("MAX_MEMORY", 8192, low=512, high=122880),
            allowed_secret_prefixes=env.arn_prefixes("ALLOWED_SECRET_PREFIXES"),
            policy_checks=env.dotted_names("POLICY_CHECKS"),
            common_config=env.common_config("COMMON_CONFIG"),
        )
        _check_image_source(settings)
        _check_github_credentials(settings)
        _check_container_port(settings)
        return settings

    def preview_url(self, host: str) -> str:
        """The URL QA opens for a preview host."""
        port = f":{self.preview_port}" if self.preview_port else ""
        return f"{self.preview_scheme}://{host}{port}"


# Names of the variables read by Settings.from_environ, for the Terraform check that the
# Lambda definition sets each required one.
REQUIRED_VARIABLES = tuple(
    PREFIX + name
    for name in (
        "APP_NAME",
        "QUEUE_URL",
        "TABLE",
        "CLUSTER",
        "VPC_ID",
        "SUBNETS",
        "SECURITY_GROUPS",
        "LISTENERS",
        "HOSTED_ZONE_ID",
        "PREVIEW_DOMAIN",
        "ECR_REPOSITORY",
        "EXECUTION_ROLE_ARN",
    )
)


def _check_image_source(settings: Settings) -> None:
    """The settings each image source needs (see README "Images")."""
    if settings.image_source == "build" and not settings.codebuild_project:
        raise SettingsError(
            f"{PREFIX}CODEBUILD_PROJECT is not set, and {PREFIX}IMAGE_SOURCE is 'build' "
            "(the default); set the project, or set IMAGE_SOURCE to ci or retag"
        )
    if settings.image_source == "retag":
        pattern = settings.retag_pattern or ""
        if "{sha}" not in pattern and "{short_sha}" not in pattern:
            raise SettingsError(
                f"{PREFIX}RETAG_PATTERN must contain {{sha}} or {{short_sha}} when "
                f"{PREFIX}IMAGE_SOURCE is 'retag' (for example 'ci-{{sha}}'), got {pattern!r}"
            )


def _check_container_port(settings: Settings) -> None:
    """The installation's default port must be one the security groups open."""
    low, high = settings.container_ports
    if not low <= settings.container_port <= high:
        raise SettingsError(
            f"{PREFIX}CONTAINER_PORT {settings.container_port} is outside "
            f"{PREFIX}CONTAINER_PORTS {low}-{high}, the ports the security groups open from "
            "the load balancers to the tasks: set a default port inside the range, or widen "
            "the range (Terraform variable container_port_range)"
        )


GITHUB_APP_VARIABLES = tuple(
    PREFIX + name
    for name in (
        "GITHUB_APP_ID",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_APP_PRIVATE_KEY_ARN",
        "GITHUB_APP_PRIVATE_KEY",
    )
)


def _check_github_credentials(settings: Settings) -> None:
    """GitHub is reached with a token or as a GitHub App, never half an App, never both."""
    app_id, installation_id, key_arn, key = GITHUB_APP_VARIABLES
    given = {
        app_id: settings.github_app_id is not None,
        installation_id: settings.github_app_installation_id is not None,
        key_arn: settings.github_app_private_key_arn is not None,
        key: settings.github_app_private_key is not None,
    }
    if not any(given.values()):
        return
    if settings.github_token or settings.github_token_arn:
        raise SettingsError(
            f"{PREFIX}GITHUB_TOKEN / {PREFIX}GITHUB_TOKEN_ARN and the GitHub App settings "
            f"({', '.join(name for name, set_ in given.items() if set_)}) are both set; "
            "keep one way of reaching GitHub and unset the other"
        )
    if given[key_arn] and given[key]:
        raise SettingsError(
            f"{key_arn} and {key} are both set; keep one (the ARN in AWS, the key locally)"
        )
    missing = [name for name in (app_id, installation_id) if not given[name]]
    if not (given[key_arn] or given[key]):
        missing.append(f"{key_arn} (or {key} locally)")
    if missing:
        raise SettingsError(
            f"the GitHub App settings are incomplete: set {', '.join(missing)} as well"
        )
