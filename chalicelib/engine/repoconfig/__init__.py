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
- :mod:`~chalicelib.engine.repoconfig.branches`: the one rule of which branches get a preview,
  with the reason (built-in default or the file's line);
- :mod:`~chalicelib.engine.repoconfig.model`: the frozen dataclasses of a parsed file;
- :mod:`~chalicelib.engine.repoconfig.templates`: the ``env`` placeholders and their rendering;
- :mod:`~chalicelib.engine.repoconfig.parsing`: the YAML walk that reads the file and the
  common block, and the installation's defaults under every file.

The operator's policy (limits and checks on what a file may ask for) is not parsing: it
lives in :mod:`chalicelib.engine.policy`.

Importers use this package's names; the split is an internal layout. Only the branch rule
and the value rules are imported with the package; the model, parsing and templates names
are imported on first use, so the webhook intake can import the branch rule without PyYAML
and without paying for the rest of the package on a cold start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chalicelib.engine.repoconfig.branches import (
    BranchFilter,
    BranchVerdict,
    default_branch_verdict,
    preview_verdict,
)
from chalicelib.engine.repoconfig.globs import glob_match
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

if TYPE_CHECKING:
    from chalicelib.engine.repoconfig.model import (
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
    "BranchVerdict",
    "CommonConfig",
    "ConfigError",
    "RepoConfig",
    "RepoDefaults",
    "ServiceConfig",
    "ServiceSpec",
    "default_branch_verdict",
    "fargate_memory",
    "glob_match",
    "is_secret_arn",
    "load_repo_config",
    "parse_common",
    "parse_duration_hours",
    "placeholder_values",
    "preview_verdict",
    "render_env",
    "render_template",
    "repo_defaults",
    "template_placeholders",
]

# Loaded on first use (see the module docstring): the module each name comes from.
_LAZY = {
    **dict.fromkeys(
        ("CommonConfig", "RepoConfig", "RepoDefaults", "ServiceConfig", "ServiceSpec"), "model"
    ),
    **dict.fromkeys(
        ("SERVICE_KEYS", "TOP_LEVEL", "load_repo_config", "parse_common", "repo_defaults"),
        "parsing",
    ),
    **dict.fromkeys(
        (
            "PLACEHOLDERS",
            "placeholder_values",
            "render_env",
            "render_template",
            "template_placeholders",
        ),
        "templates",
    ),
}


def __getattr__(name: str) -> Any:
    """A name of the model, parsing or templates module, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
