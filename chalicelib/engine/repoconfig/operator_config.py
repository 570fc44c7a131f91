"""The operator's side: installation-wide limits, defaults, policy checks and common block.

:class:`OperatorConfig` is built once from :class:`~chalicelib.domain.settings.Settings`; every
repository's ``branchenv.yml`` is parsed against it. A bad check name or common block is a
:class:`~chalicelib.domain.settings.SettingsError` (the operator's mistake, not a repository's).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.domain.settings import DEFAULT_CONTAINER_PORTS, Settings, SettingsError
from chalicelib.engine.repoconfig.model import CommonConfig
from chalicelib.engine.repoconfig.parsing import parse_common
from chalicelib.engine.repoconfig.schema import ConfigError

if TYPE_CHECKING:
    from chalicelib.engine.policy import PolicyCheck


@dataclass(frozen=True)
class OperatorConfig:
    """Installation-wide limits and defaults that every repository's file is held to.
    An empty ``allowed_secret_prefixes`` allows any SSM or Secrets Manager ARN;
    ``container_ports`` is the range the security groups open to the tasks (the policy
    check ``container-port`` holds every rendered port to it)."""

    max_cpu: int = 2048
    max_memory: int = 8192
    allowed_secret_prefixes: tuple[str, ...] = ()
    checks: tuple[PolicyCheck, ...] = ()
    common: CommonConfig = field(default_factory=CommonConfig)
    default_cpu: int = 256
    default_memory: int = 512
    container_ports: tuple[int, int] = DEFAULT_CONTAINER_PORTS

    @classmethod
    def from_settings(cls, settings: Settings) -> OperatorConfig:
        """Build from settings; SettingsError if a check or the common block is bad."""
        return cls(
            max_cpu=settings.max_cpu,
            max_memory=settings.max_memory,
            allowed_secret_prefixes=settings.allowed_secret_prefixes,
            checks=tuple(resolve_check(name) for name in settings.policy_checks),
            common=_common_from_setting(settings.common_config),
            default_cpu=settings.cpu,
            default_memory=settings.memory,
            container_ports=settings.container_ports,
        )


def resolve_check(dotted: str) -> PolicyCheck:
    """The function named ``package.module:function``; SettingsError if there is none."""
    module_name, _, attribute = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(
            f"BRANCHENV_POLICY_CHECKS: cannot import {module_name!r} ({exc.__class__.__name__}); "
            "check the name and that the module is packaged with the app"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise SettingsError(
            f"BRANCHENV_POLICY_CHECKS: {module_name!r} has no function {attribute!r}"
        )
    check: PolicyCheck = function
    return check


def _common_from_setting(text: str | None) -> CommonConfig:
    if not text:
        return CommonConfig()
    try:
        return parse_common(text, source="BRANCHENV_COMMON_CONFIG")
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
