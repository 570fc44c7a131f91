"""The deploy's one error type, and how a failed tool's output becomes its message.

Shared by the packaging step and the Terraform runner: both turn a child process's output
into a single line the operator can act on.
"""

from __future__ import annotations

from chalicelib.tools.cli import CommandError


class DeployError(CommandError):
    """The package or the Terraform run failed; the message says what to do next."""


def last_error_line(text: str | None) -> str:
    """What went wrong, in one line of a tool's output: its last line starting with
    "Error", else its last non-blank line (Terraform's box margins stripped)."""
    lines = [line.strip(" │╷╵") for line in (text or "").splitlines()]
    useful = [line for line in lines if line.strip()]
    errors = [line for line in useful if line.startswith("Error")]
    return (errors or useful or ["no output"])[-1].strip()
