"""The parsed ``branchenv.yml``: frozen dataclasses for the file, its service and filters.

:class:`RepoConfig` is one repository's file merged over the operator's
:class:`CommonConfig`; :class:`ServiceSpec` is its service once the installation's
settings fill what the file leaves out. Its ``branches``, a
:class:`~chalicelib.engine.repoconfig.branches.BranchFilter`, feed the one rule of which
branches get a preview (:mod:`chalicelib.engine.repoconfig.branches`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.settings import Settings, default_of
from chalicelib.engine.repoconfig.branches import BranchFilter
from chalicelib.engine.repoconfig.globs import glob_match


@dataclass(frozen=True)
class ServiceConfig:
    """The service as the file sets it; ``None`` means the installation's default."""

    container_port: int | None = None
    health_check_path: str | None = None
    cpu: int | None = None
    memory: int | None = None
    desired_count: int | None = None
    spot: bool | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """The service after the installation's defaults fill what the file leaves out."""

    container_port: int
    health_check_path: str
    cpu: int
    memory: int
    desired_count: int
    spot: bool


@dataclass(frozen=True)
class RepoConfig:
    """One repository's ``branchenv.yml`` merged over the operator's common block.
    ``RepoConfig()`` is a repository without the file and without a common block."""

    branches: BranchFilter = field(default_factory=BranchFilter)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    ttl_hours: float | None = None
    slack_channel: str | None = None
    keep: tuple[str, ...] = ()
    sleep_after_minutes: float | None = None  # 0: never; None: the installation's setting

    def service_spec(self, settings: Settings) -> ServiceSpec:
        """The effective service: the file's values, else the installation's settings."""
        s = self.service
        return ServiceSpec(
            container_port=value_or_default(s.container_port, settings.container_port),
            health_check_path=value_or_default(s.health_check_path, settings.health_check_path),
            cpu=value_or_default(s.cpu, settings.cpu),
            memory=value_or_default(s.memory, settings.memory),
            desired_count=value_or_default(s.desired_count, settings.desired_count),
            spot=value_or_default(s.spot, settings.spot),
        )

    def is_kept(self, branch: str) -> bool:
        """True when the reaper must never remove ``branch``'s environment."""
        return any(glob_match(p, branch) for p in self.keep)


@dataclass(frozen=True)
class CommonConfig:
    """The operator's installation-wide ``env`` and ``secrets``, merged under each file."""

    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RepoDefaults:
    """What the installation puts under every repository's file: the sizes a file that
    sets only one of cpu and memory is checked against, and the operator's common block
    (built from settings by :func:`~chalicelib.engine.repoconfig.parsing.repo_defaults`)."""

    default_cpu: int = field(default=default_of("cpu"))
    default_memory: int = field(default=default_of("memory"))
    common: CommonConfig = field(default_factory=CommonConfig)


def value_or_default(value: Any, default: Any) -> Any:
    """``value`` as the file set it, else ``default`` (the file left it out: ``None``)."""
    return default if value is None else value
