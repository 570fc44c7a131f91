"""The messages that travel through the work queue, and their JSON form.

Producers (intake, AWS event handlers, the reaper) only build these; the worker is the
only consumer. Keep them small: SQS caps a message at 256 KiB. A converge request may carry
a :class:`Signal`: what an AWS event said, which converge uses beside what it knows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

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


class SignalKind(StrEnum):
    """Every kind of news the AWS event handlers (chalicelib/handlers/aws_events.py) send."""

    BUILD_SUCCEEDED = "build_succeeded"
    BUILD_FAILED = "build_failed"
    IMAGE_PUSHED = "image_pushed"
    DEPLOYMENT_COMPLETED = "deployment_completed"
    DEPLOYMENT_FAILED = "deployment_failed"
    SPOT_INTERRUPTED = "spot_interrupted"


@dataclass(frozen=True)
class Signal:
    """What an AWS event told the worker; converge uses it beside what it knows."""

    kind: SignalKind
    reason: str | None = None
    log_url: str | None = None
    sha: str | None = None
    task_arn: str | None = None  # spot_interrupted: the task ECS stopped
    deployment_id: str | None = None  # deployment_*: the ECS deployment it is about

    def to_detail(self) -> dict[str, Any]:
        """The signal as a converge request's ``detail``."""
        fields = dataclasses.asdict(self).items()
        return {"signal": self.kind.value} | {k: v for k, v in fields if k != "kind" and v}

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> Signal | None:
        """The signal in a converge request's detail; None when there is none. A kind this
        version does not know is a MessageError (a newer producer's message)."""
        raw = detail.get("signal")
        if not raw:
            return None
        try:
            kind = SignalKind(str(raw))
        except ValueError:
            raise MessageError(f"unknown signal {raw!r}") from None
        text = {k: detail.get(k) for k in ("reason", "log_url", "sha", "task_arn", "deployment_id")}
        return cls(kind, **{k: str(v) if v is not None else None for k, v in text.items()})


# A converge request's cause when someone asks a sleeping preview to wake (a request that
# reached the waker, the dashboard): the worker records the environment awake first.
WAKE_CAUSE = "wake"


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


class Queue(Protocol):
    """Where messages go: the work queue (chalicelib/aws/sqs.py ``WorkQueue``)."""

    def send(
        self, message: dict[str, Any], *, group_id: str, dedup_id: str | None = None
    ) -> str: ...


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
