"""The messages that travel through the work queue, and their JSON form.

Producers (intake, AWS event handlers, the reaper) only build these; the worker is the
only consumer. Keep them small: SQS caps a message at 256 KiB.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.domain.environments import Desired


class MessageError(ValueError):
    """A queue message is not one branchenv sends."""


@dataclass(frozen=True)
class BranchEvent:
    """What a GitHub webhook says about one branch: it should exist at ``sha`` or not."""

    repository: str
    branch: str
    desired: Desired
    sha: str | None
    ordering: float
    delivery_id: str
    event: str
    pusher: str | None = None
    commit_url: str | None = None
    type: Literal["branch"] = "branch"

    def to_message(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ConvergeRequest:
    """Converge one environment again (an AWS event, a retry, the reaper)."""

    slug: str
    cause: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    type: Literal["converge"] = "converge"

    def to_message(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Message = BranchEvent | ConvergeRequest


def parse_message(data: Any) -> Message:
    """The message for a decoded queue body; MessageError if it is not one of ours."""
    if not isinstance(data, dict):
        raise MessageError("queue message is not a JSON object")
    kind = data.get("type")
    cls: type[BranchEvent] | type[ConvergeRequest]
    if kind == "branch":
        cls = BranchEvent
    elif kind == "converge":
        cls = ConvergeRequest
    else:
        raise MessageError(f"unknown queue message type {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise MessageError(f"malformed {kind} message: {exc}") from None
