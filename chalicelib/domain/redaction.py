"""Secret-free text: what may leave the process in a message, a status or a log line.

Anything that looks like a token (Slack, GitHub, an AWS access key id, a bearer token) is
replaced before text reaches a person; every channel and gateway that echoes an error
passes it through :func:`redact`.
"""

from __future__ import annotations

import re

# Tokens that must never leave the process in a message, even if some error text carries
# one by accident: Slack tokens, GitHub tokens, AWS access key ids.
_SECRET_PATTERNS = (
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{10,}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{10,}"),
    re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}"),
    re.compile(r"(?i)(bearer|token)\s+[A-Za-z0-9._\-]{8,}"),
)


def redact(text: str) -> str:
    """``text`` with anything that looks like a token replaced by ``[redacted]``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text
