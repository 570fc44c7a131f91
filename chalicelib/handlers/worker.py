"""The queue worker: one message in, the branch's desired state recorded, converge run.

Called by the ``@app.on_sqs_message`` handler with batch size 1 (:func:`handle_delivery`
says whether the message is done). A message that cannot be parsed is logged and dropped
(retrying it would never help).

Waiting and failing cost their own backoff, never the queue's visibility timeout. When
Lambda's SQS event source sees a failure it leaves the message invisible for the queue's
whole visibility timeout (30 minutes here), with its FIFO group blocked (Lambda developer
guide, "Handling errors for an SQS event source"). So before reporting the message as a
batch item failure, the worker makes it visible again after 2, 4, 8, … at most 60 seconds
(ChangeMessageVisibility on its receipt handle). A converge that is only waiting
(:class:`RetryLater`) gives up before the queue's maxReceiveCount would move the message to
the dead-letter queue: the environment ends ``failed`` with the reason, so a legitimate
wait never becomes a dead letter. Errors keep failing into the dead-letter queue, where
the reaper's alert finds them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.aws.errors import AwsError
from chalicelib.domain.desired import desire_of, desire_sleep
from chalicelib.domain.environments import Status
from chalicelib.domain.messages import (
    WAKE_CAUSE,
    BranchEvent,
    ConvergeRequest,
    Message,
    MessageError,
    Signal,
    parse_message,
)
from chalicelib.domain.names import names_for
from chalicelib.engine.converge import RetryLater

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 2
MAX_BACKOFF_SECONDS = 60  # the cap issue 12 sets; a FIFO group waits at most this long
DEFAULT_MAX_RECEIVE_COUNT = 20  # terraform/queue.tf and the local bootstrap use the same


def backoff_seconds(receive_count: int) -> int:
    """How long a message waits before its next try: 2, 4, 8, 16, 32, then 60 s."""
    exponent = max(receive_count, 1) - 1
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS << min(exponent, 16))


def longest_wait_seconds(max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT) -> int:
    """The longest chain of legitimate waits on one message: the receives before the one
    that gives up (one before maxReceiveCount) each wait their backoff. The reaper's
    stuck limit must exceed it."""
    return sum(backoff_seconds(n) for n in range(1, max_receive_count - 1))


@dataclass(frozen=True)
class Delivery:
    """One SQS message as Lambda's event source hands it over."""

    body: str
    message_id: str = ""
    receipt_handle: str | None = None
    receive_count: int = 1

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Delivery:
        """From a record of Lambda's SQS event (``Records[i]``)."""
        attributes = record.get("attributes") or {}
        return cls(
            body=str(record.get("body", "")),
            message_id=str(record.get("messageId", "")),
            receipt_handle=record.get("receiptHandle"),
            receive_count=int(attributes.get("ApproximateReceiveCount", 1) or 1),
        )


def handle_delivery(delivery: Delivery, runtime: Runtime) -> bool:
    """Process one message; True when it is done (Lambda deletes it), False when it must
    be tried again (it has been made visible again after its backoff)."""
    message = _parse(delivery.body)
    if message is None:
        return True
    try:
        handle_message(message, runtime)
    except RetryLater as wait:
        return _wait(delivery, message, str(wait), runtime)
    except AwsError as exc:
        log.warning("converge failed (%s); retrying after its backoff: %s", exc.code, exc)
    except Exception:
        log.exception("converge failed; retrying after its backoff")
    else:
        return True
    _postpone(delivery, runtime)
    return False


def handle_body(body: str, runtime: Runtime) -> None:
    """Process one queue message body; waits and failures raise (tests, tools)."""
    message = _parse(body)
    if message is not None:
        handle_message(message, runtime)


def handle_message(message: Message, runtime: Runtime) -> None:
    if isinstance(message, BranchEvent):
        handle_branch_event(message, runtime)
    else:
        handle_converge_request(message, runtime)


def _parse(body: str) -> Message | None:
    try:
        return parse_message(json.loads(body))
    except (ValueError, MessageError) as exc:
        log.error("dropping a queue message that is not branchenv's: %s", exc)
        return None


def _wait(delivery: Delivery, message: Message, reason: str, runtime: Runtime) -> bool:
    if delivery.receive_count < _last_wait(runtime):
        log.info("waiting %ss: %s", backoff_seconds(delivery.receive_count), reason)
        _postpone(delivery, runtime)
        return False
    slug = _slug_of(message, runtime)
    waited = longest_wait_seconds() // 60
    log.warning("%s: gave up waiting after about %s minutes: %s", slug, waited, reason)
    runtime.converger.give_up(
        slug,
        f"gave up after waiting about {waited} minutes: {reason}. "
        "Push again to retry; if it keeps happening, look at the AWS console for the cause",
    )
    return True


def _last_wait(runtime: Runtime) -> int:
    """The receive on which a wait gives up: one before the queue's maxReceiveCount would
    make the message a dead letter, and never later than the default's (so the chain of
    waits stays shorter than the reaper's stuck limit whatever the queue says)."""
    try:
        limit = runtime.queue.max_receive_count() or DEFAULT_MAX_RECEIVE_COUNT
    except AwsError as exc:
        log.warning(
            "could not read the queue's maxReceiveCount (%s); assuming %s",
            exc.code,
            DEFAULT_MAX_RECEIVE_COUNT,
        )
        limit = DEFAULT_MAX_RECEIVE_COUNT
    return min(limit, DEFAULT_MAX_RECEIVE_COUNT) - 1


def _postpone(delivery: Delivery, runtime: Runtime) -> None:
    """Make the message visible again after its backoff. If SQS refuses, the message
    comes back after the queue's visibility timeout instead: later, never lost."""
    if not delivery.receipt_handle:
        return
    seconds = backoff_seconds(delivery.receive_count)
    try:
        runtime.queue.change_visibility(delivery.receipt_handle, seconds)
    except AwsError as exc:
        log.warning(
            "could not set the message's visibility to %ss (%s): %s", seconds, exc.code, exc
        )


def _slug_of(message: Message, runtime: Runtime) -> str:
    if isinstance(message, ConvergeRequest):
        return message.slug
    s = runtime.settings
    return names_for(s.app_name, message.repository, message.branch, s.preview_domain).slug


def handle_branch_event(event: BranchEvent, runtime: Runtime) -> None:
    s = runtime.settings
    names = names_for(s.app_name, event.repository, event.branch, s.preview_domain)
    desire = desire_of(
        runtime.store,
        event,
        names,
        clock=time.time,
        truth=runtime.branch_truth,
        history_days=s.history_days,
        defer=True,  # converge writes it with its own first write
    )
    if desire is None:
        return
    env = desire.env
    if env.desired == "absent" and env.status == Status.DELETED:
        return
    runtime.converger.converge(env.slug, env=env, unsaved=not desire.written)


def handle_converge_request(request: ConvergeRequest, runtime: Runtime) -> None:
    try:
        signal = Signal.from_detail(request.detail)
    except MessageError as exc:  # a newer producer's signal: converge still observes AWS
        log.warning("%s: converging without the signal: %s", request.slug, exc)
        signal = None
    if request.cause == WAKE_CAUSE:
        env = desire_sleep(
            runtime.store,
            request.slug,
            asleep=False,
            when=lambda env: env.is_live and env.desired == "present",
        )
        if env is not None:
            runtime.converger.converge(request.slug, signal, env=env)
        return
    runtime.converger.converge(request.slug, signal)
