"""The value rules of ``branchenv.yml``, independent of YAML: names, limits, ARNs, sizes.

What a single value in the file may be (a variable name, a secret ARN, a Fargate cpu and
memory pair, a duration) and the :class:`ConfigError` raised when one is not. The parser in
:mod:`chalicelib.engine.repoconfig.parsing` applies these rules to each node it reads.
"""

from __future__ import annotations

import re

from chalicelib.domain.durations import parse_duration_hours as parse_duration_hours

FILE_NAME = "branchenv.yml"
MAX_FILE_BYTES = 64 * 1024
# Set by branchenv in every task definition; a repository cannot redefine them.
RESERVED_ENV = frozenset({"BRANCH", "BRANCH_SLUG", "COMMIT_SHA", "PREVIEW_URL"})
DEFAULT_INCLUDE = ("**",)
DEFAULT_EXCLUDE = ("dependabot/**",)
FARGATE_CPU = (256, 512, 1024, 2048, 4096)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SSM_ARN = re.compile(r"^arn:aws(-[a-z]+)*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]+$")
_SECRETS_MANAGER_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@\-]+"
    r"(:[^:]*:[^:]*:[^:]*)?$"
)
ARN_FORMS = (
    "an SSM parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME) or a Secrets Manager "
    "ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
)


class ConfigError(ValueError):
    """A ``branchenv.yml`` (or the operator's common block) is not valid; says where."""


def fargate_memory(cpu: int) -> list[int]:
    """The memory sizes (MiB) Fargate runs with ``cpu`` units."""
    if cpu == 256:
        return [512, 1024, 2048]
    low, high = {512: (1024, 4096), 1024: (2048, 8192), 2048: (4096, 16384)}.get(cpu, (8192, 30720))
    return list(range(low, high + 1, 1024))


def is_secret_arn(value: str) -> bool:
    """An SSM parameter or Secrets Manager secret ARN (what ECS ``valueFrom`` takes)."""
    return bool(_SSM_ARN.match(value) or _SECRETS_MANAGER_ARN.match(value))
