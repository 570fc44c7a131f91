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
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

from chalicelib.domain import settings_env as parse
from chalicelib.domain.settings_env import IMAGE_SOURCES as IMAGE_SOURCES
from chalicelib.domain.settings_env import PREFIX as PREFIX
from chalicelib.domain.settings_env import VARIABLE, EnvReader, Variable, variable
from chalicelib.domain.settings_env import ImageSource as ImageSource
from chalicelib.domain.settings_env import Listener as Listener
from chalicelib.domain.settings_env import SettingsError as SettingsError

APP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,21}[a-z0-9]$")
APP_NAME_EXPECTED = (
    "lower-case letters, digits and '-', 2 to 23 characters (the load balancer's "
    "name '<app>-previews' must fit in 32), starting with a letter"
)
DEFAULT_CONTAINER_PORT = 8080
# The ports terraform/network.tf opens from the load balancers to the tasks (its variable
# container_port_range, passed as BRANCHENV_CONTAINER_PORTS). The ALB must reach targets on
# the listener and health check ports through the security groups ("Security groups for
# your Application Load Balancer", docs.aws.amazon.com/elasticloadbalancing/latest/
# application/load-balancer-update-security-groups.html), so no other port can serve.
DEFAULT_CONTAINER_PORTS = (80, 65535)
MIB = 1024 * 1024


def _preview_port(env: EnvReader, name: str, default: int | None) -> int | None:
    return env.integer(name, 0, low=0, high=65535) or default  # 0: no port in the URL


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one branchenv installation (one application).

    Each field's metadata names its variable and parser (:func:`variable`); its default,
    written only here, is what an unset variable means. A field without a default is a
    required variable (:data:`REQUIRED_VARIABLES` is derived from them).
    """

    app_name: str = field(
        metadata=variable("APP_NAME", parse.pattern(APP_NAME_PATTERN, APP_NAME_EXPECTED))
    )
    region: str = field(metadata=variable("AWS_REGION", parse.region, prefixed=False))
    queue_url: str = field(metadata=variable("QUEUE_URL", parse.required))
    table_name: str = field(metadata=variable("TABLE", parse.required))
    cluster: str = field(metadata=variable("CLUSTER", parse.required))
    vpc_id: str = field(metadata=variable("VPC_ID", parse.required))
    subnets: tuple[str, ...] = field(metadata=variable("SUBNETS", parse.required_csv))
    security_groups: tuple[str, ...] = field(
        metadata=variable("SECURITY_GROUPS", parse.required_csv)
    )
    listeners: tuple[Listener, ...] = field(metadata=variable("LISTENERS", parse.listeners))
    hosted_zone_id: str = field(metadata=variable("HOSTED_ZONE_ID", parse.required))
    preview_domain: str = field(metadata=variable("PREVIEW_DOMAIN", parse.domain))
    ecr_repository: str = field(metadata=variable("ECR_REPOSITORY", parse.required))
    execution_role_arn: str = field(metadata=variable("EXECUTION_ROLE_ARN", parse.required))
    task_role_arn: str | None = field(default=None, metadata=variable("TASK_ROLE_ARN", parse.text))
    aws_endpoint_url: str | None = field(
        default=None, metadata=variable("AWS_ENDPOINT_URL", parse.text)
    )
    preview_scheme: str = field(
        default="https", metadata=variable("PREVIEW_SCHEME", parse.choice("https", "http"))
    )
    # In preview URLs; locally the load balancer's port.
    preview_port: int | None = field(default=None, metadata=variable("PREVIEW_PORT", _preview_port))
    container_port: int = field(
        default=DEFAULT_CONTAINER_PORT, metadata=variable("CONTAINER_PORT", parse.integer(1, 65535))
    )
    container_ports: tuple[int, int] = field(
        default=DEFAULT_CONTAINER_PORTS, metadata=variable("CONTAINER_PORTS", parse.port_range)
    )
    health_check_path: str = field(default="/", metadata=variable("HEALTH_CHECK_PATH", parse.path))
    cpu: int = field(default=256, metadata=variable("CPU", parse.integer(256, 16384)))
    memory: int = field(default=512, metadata=variable("MEMORY", parse.integer(512, 122880)))
    desired_count: int = field(default=1, metadata=variable("DESIRED_COUNT", parse.integer(0, 10)))
    spot: bool = field(default=True, metadata=variable("SPOT", parse.boolean))
    on_demand_base: int = field(
        default=0, metadata=variable("ON_DEMAND_BASE", parse.integer(0, 10))
    )
    history_days: int = field(default=14, metadata=variable("HISTORY_DAYS", parse.integer(1, 3650)))
    # WEBHOOK_SECRET and WEBHOOK_SECRET_PREVIOUS (during a rotation); never echoed.
    webhook_secrets: tuple[str, ...] = field(
        default=(), repr=False, metadata=variable("WEBHOOK_SECRET", parse.with_previous)
    )
    webhook_secret_arn: str | None = field(
        default=None, metadata=variable("WEBHOOK_SECRET_ARN", parse.text)
    )
    allowed_repositories: frozenset[str] = field(
        default=frozenset(), metadata=variable("ALLOWED_REPOSITORIES", parse.csv_set)
    )
    max_body_bytes: int = field(
        default=5 * MIB, metadata=variable("MAX_BODY_BYTES", parse.integer(1024, 25 * MIB))
    )
    image_source: ImageSource = field(
        default="build", metadata=variable("IMAGE_SOURCE", parse.choice(*IMAGE_SOURCES))
    )
    codebuild_project: str | None = field(
        default=None, metadata=variable("CODEBUILD_PROJECT", parse.text)
    )
    retag_pattern: str | None = field(default=None, metadata=variable("RETAG_PATTERN", parse.text))
    github_token: str | None = field(
        default=None, repr=False, metadata=variable("GITHUB_TOKEN", parse.text)
    )
    github_token_arn: str | None = field(
        default=None, metadata=variable("GITHUB_TOKEN_ARN", parse.text)
    )
    github_app_id: int | None = field(
        default=None, metadata=variable("GITHUB_APP_ID", parse.positive_id)
    )
    github_app_installation_id: int | None = field(
        default=None, metadata=variable("GITHUB_APP_INSTALLATION_ID", parse.positive_id)
    )
    github_app_private_key: str | None = field(
        default=None, repr=False, metadata=variable("GITHUB_APP_PRIVATE_KEY", parse.private_key)
    )
    github_app_private_key_arn: str | None = field(
        default=None, metadata=variable("GITHUB_APP_PRIVATE_KEY_ARN", parse.text)
    )
    github_api_url: str = field(
        default="https://api.github.com", metadata=variable("GITHUB_API_URL", parse.text)
    )
    slack_token: str | None = field(
        default=None, repr=False, metadata=variable("SLACK_TOKEN", parse.text)
    )
    slack_token_arn: str | None = field(
        default=None, metadata=variable("SLACK_TOKEN_ARN", parse.text)
    )
    slack_api_url: str = field(
        default="https://slack.com/api/", metadata=variable("SLACK_API_URL", parse.text)
    )
    slack_channel: str | None = field(default=None, metadata=variable("SLACK_CHANNEL", parse.text))
    event_bus: str | None = field(default=None, metadata=variable("EVENT_BUS", parse.text))
    dashboard_auth: Literal["none", "api_key", "iam"] = field(
        default="api_key",
        metadata=variable("DASHBOARD_AUTH", parse.choice("none", "api_key", "iam")),
    )
    # DASHBOARD_API_KEY and DASHBOARD_API_KEY_PREVIOUS (during a rotation); never echoed.
    dashboard_api_keys: tuple[str, ...] = field(
        default=(), repr=False, metadata=variable("DASHBOARD_API_KEY", parse.with_previous)
    )
    dashboard_api_key_arn: str | None = field(
        default=None, metadata=variable("DASHBOARD_API_KEY_ARN", parse.text)
    )
    ttl_hours: float = field(default=72.0, metadata=variable("TTL_HOURS", parse.number(0.0)))
    # An hour without a request or a deploy: longer than a lunch break or a meeting, so a
    # preview in use is not put to sleep under its tester, and short enough that a preview
    # nobody opens runs an hour or so a day (README.md, "Sleeping previews"). 0: never.
    sleep_after_minutes: float = field(
        default=60.0, metadata=variable("SLEEP_AFTER", parse.sleep_after)
    )
    stuck_minutes: int = field(
        default=30, metadata=variable("STUCK_MINUTES", parse.integer(1, 24 * 60))
    )
    max_cpu: int = field(default=2048, metadata=variable("MAX_CPU", parse.integer(256, 16384)))
    max_memory: int = field(
        default=8192, metadata=variable("MAX_MEMORY", parse.integer(512, 122880))
    )
    allowed_secret_prefixes: tuple[str, ...] = field(
        default=(), metadata=variable("ALLOWED_SECRET_PREFIXES", parse.arn_prefixes)
    )
    policy_checks: tuple[str, ...] = field(
        default=(), metadata=variable("POLICY_CHECKS", parse.dotted_names)
    )
    common_config: str | None = field(
        default=None, metadata=variable("COMMON_CONFIG", parse.common_config)
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise SettingsError naming the first bad one."""
        env = EnvReader(environ)
        values = {}
        for setting in fields(cls):
            source: Variable = setting.metadata[VARIABLE]
            values[setting.name] = source.parse(env, source.name, setting.default)
        settings = cls(**values)
        _check_image_source(settings)
        _check_github_credentials(settings)
        _check_container_port(settings)
        return settings

    def preview_url(self, host: str) -> str:
        """The URL QA opens for a preview host."""
        port = f":{self.preview_port}" if self.preview_port else ""
        return f"{self.preview_scheme}://{host}{port}"


def default_of(name: str) -> Any:
    """The default of the Settings field ``name``, for code that needs it without Settings
    (written once, on the field)."""
    return Settings.__dataclass_fields__[name].default


def variable_of(name: str) -> Variable:
    """Where the Settings field ``name`` is read from."""
    source: Variable = Settings.__dataclass_fields__[name].metadata[VARIABLE]
    return source


# The variables a Settings field without a default is read from (AWS_REGION aside, which
# Lambda sets itself), for the Terraform check that the Lambda definition sets each one.
REQUIRED_VARIABLES = tuple(
    variable_of(setting.name).full_name
    for setting in fields(Settings)
    if setting.default is MISSING and variable_of(setting.name).prefixed
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
