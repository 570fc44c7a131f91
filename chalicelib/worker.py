"""The queue worker: one message in, the branch's desired state recorded, converge run.

Called by the ``@app.on_sqs_message`` handler with batch size 1. A message that cannot be
parsed is logged and dropped (retrying it would never help); anything else that fails
is raised so SQS makes the message visible again and retries it, and after the queue's
maxReceiveCount it goes to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from chalicelib.converge import Signal
from chalicelib.desired import apply_event
from chalicelib.environments import Status
from chalicelib.messages import BranchEvent, ConvergeRequest, MessageError, parse_message
from chalicelib.names import names_for

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime

log = logging.getLogger(__name__)


def handle_body(body: str, runtime: Runtime) -> None:
    """Process one queue message body."""
    try:
        message = parse_message(json.loads(body))
    except (ValueError, MessageError) as exc:
        log.error("dropping a queue message that is not branchenv's: %s", exc)
        return
    if isinstance(message, BranchEvent):
        handle_branch_event(message, runtime)
    else:
        handle_converge_request(message, runtime)


def handle_branch_event(event: BranchEvent, runtime: Runtime) -> None:
    s = runtime.settings
    names = names_for(s.app_name, event.repository, event.branch, s.preview_domain)
    env = apply_event(
        runtime.store,
        event,
        names,
        clock=time.time,
        truth=runtime.branch_truth,
        history_days=s.history_days,
    )
    if env is None or (env.desired == "absent" and env.status == Status.DELETED):
        return
    runtime.converger.converge(env.slug, env=env)


def handle_converge_request(request: ConvergeRequest, runtime: Runtime) -> None:
    signal = None
    if request.detail.get("signal"):
        detail = request.detail
        signal = Signal(
            kind=str(detail["signal"]),
            reason=detail.get("reason"),
            log_url=detail.get("log_url"),
            sha=detail.get("sha"),
        )
    runtime.converger.converge(request.slug, signal)
