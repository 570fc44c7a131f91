"""Per-repository configuration: ``branchenv.yml``, its schema, placeholders and filters.

An application repository may hold a ``branchenv.yml`` at its root (read at the deployed
sha). This package parses it into a frozen :class:`RepoConfig`, merging the operator's
installation-wide ``common`` block under it, and renders its ``env`` templates. Every
error is a :class:`ConfigError` naming the file, the line and the key path, e.g.
``branchenv.yml line 7: service.cpu: must be one of 256, 512, 1024, 2048, 4096, got 300``.

It must never put a value from ``env`` or ``secrets`` into an error message (either may
hold a secret someone pasted by mistake), never evaluate anything but the five single-word
placeholders, and never call AWS or GitHub.

The modules (at run time each imports only modules listed before it):

- :mod:`~chalicelib.engine.repoconfig.schema`: value rules (names, ARNs, Fargate sizes,
  durations) and :class:`ConfigError`;
- :mod:`~chalicelib.engine.repoconfig.globs`: the branch patterns of ``branches`` and ``keep``;
- :mod:`~chalicelib.engine.repoconfig.model`: the frozen dataclasses of a parsed file;
- :mod:`~chalicelib.engine.repoconfig.templates`: the ``env`` placeholders and their rendering;
- :mod:`~chalicelib.engine.repoconfig.parsing`: the YAML walk that reads the file and the
  common block, and the installation's defaults under every file.

The operator's policy (limits and checks on what a file may ask for) is not parsing: it
lives in :mod:`chalicelib.engine.policy`.

Importers use this package's names; the split is an internal layout.
"""

from __future__ import annotations

from chalicelib.engine.repoconfig.globs import glob_match
from chalicelib.engine.repoconfig.model import (
    BranchFilter,
    CommonConfig,
    RepoConfig,
    RepoDefaults,
    ServiceConfig,
    ServiceSpec,
)
from chalicelib.engine.repoconfig.parsing import (
    SERVICE_KEYS,
    TOP_LEVEL,
    load_repo_config,
    parse_common,
    repo_defaults,
)
from chalicelib.engine.repoconfig.schema import (
    ARN_FORMS,
    DEFAULT_EXCLUDE,
    DEFAULT_INCLUDE,
    ENV_NAME,
    FARGATE_CPU,
    FILE_NAME,
    MAX_FILE_BYTES,
    RESERVED_ENV,
    ConfigError,
    fargate_memory,
    is_secret_arn,
    parse_duration_hours,
)
from chalicelib.engine.repoconfig.templates import (
    PLACEHOLDERS,
    placeholder_values,
    render_env,
    render_template,
    template_placeholders,
)

__all__ = [
    "ARN_FORMS",
    "DEFAULT_EXCLUDE",
    "DEFAULT_INCLUDE",
    "ENV_NAME",
    "FARGATE_CPU",
    "FILE_NAME",
    "MAX_FILE_BYTES",
    "PLACEHOLDERS",
    "RESERVED_ENV",
    "SERVICE_KEYS",
    "TOP_LEVEL",
    "BranchFilter",
    "CommonConfig",
    "ConfigError",
    "RepoConfig",
    "RepoDefaults",
    "ServiceConfig",
    "ServiceSpec",
    "fargate_memory",
    "glob_match",
    "is_secret_arn",
    "load_repo_config",
    "parse_common",
    "parse_duration_hours",
    "placeholder_values",
    "render_env",
    "render_template",
    "repo_defaults",
    "template_placeholders",
]
