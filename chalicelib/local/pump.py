"""Plays Lambda's SQS event source mapping and EventBridge schedules for the local stack.

:class:`QueuePump` receives from the FIFO work queue in the moto server and calls the
worker handler the way Lambda does: one SQS event per message, the message deleted only
when the handler returns; when it raises, the message becomes visible again after a short
delay and is retried (and, after the queue's maxReceiveCount, moved to the dead-letter
queue by SQS). Messages of one group run in order, different groups in parallel.
:class:`Scheduler` calls a ``@app.schedule`` handler every few seconds.

Used only by the local stack: it must never be imported by the deployed Lambda, and it
talks only to the moto server it is given.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice.local import LambdaContext

from chalicelib.local.eventbridge import QueuedMessage, scheduled_event, sqs_event

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
IN_FLIGHT_SECONDS = 120
DEFAULT_RETRY_SECONDS = 2


def lambda_context(function_name: str, timeout_seconds: int = 300) -> Any:
    """A context object with the attributes a real Lambda context has."""
    return LambdaContext(function_name, 512, max_runtime_ms=timeout_seconds * 1000)


class QueuePump:
    """Feeds the work queue to ``handler`` until stopped."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        region: str,
        retry_seconds: int = DEFAULT_RETRY_SECONDS,
        workers: int = 4,
        poll_seconds: int = 0,
        idle_seconds: float = 0.1,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._region = region
        self._retry_seconds = retry_seconds
        # Short polls with a pause: a long poll to the moto server holds it for its whole
        # wait, and every other call of the stack (converge's included) queues behind it.
        self._poll_seconds = poll_seconds
        self._idle_seconds = idle_seconds
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pump-worker")
        self._thread = threading.Thread(target=self._run, name="pump", daemon=True)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._queue_arn = ""
        self.failures = 0
        self.handled = 0

    def start(self) -> None:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]
        self._queue_arn = attributes["QueueArn"]
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)

    def busy(self) -> bool:
        """True while a message is being handled."""
        with self._busy_lock:
            return self._busy > 0

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._receive()
            except Exception as exc:  # the moto server is shutting down, or a hiccup
                if not self._stopping.is_set():
                    log.warning("queue pump could not receive: %s", exc)
                    self._stopping.wait(0.5)
                continue
            if not messages:
                self._stopping.wait(self._idle_seconds)
            for group in _by_group(messages).values():
                self._mark_busy(+1)
                self._pool.submit(self._handle_group, group)

    def _receive(self) -> list[tuple[str, QueuedMessage]]:
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self._poll_seconds,
            VisibilityTimeout=IN_FLIGHT_SECONDS,
            MessageSystemAttributeNames=["All"],
        )
        received = []
        for raw in answer.get("Messages", []):
            attributes = dict(raw.get("Attributes", {}))
            message = QueuedMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw["Body"],
                attributes=attributes,
            )
            received.append((attributes.get("MessageGroupId", ""), message))
        return received

    def _handle_group(self, messages: list[QueuedMessage]) -> None:
        """Handle one group's messages in order; after a failure the rest wait for a retry."""
        try:
            for index, message in enumerate(messages):
                if self._stopping.is_set() or not self._handle(message):
                    self._release(messages[index:])
                    return
        finally:
            self._mark_busy(-1)

    def _handle(self, message: QueuedMessage) -> bool:
        event = sqs_event([message], queue_arn=self._queue_arn, region=self._region)
        try:
            self._handler(event, lambda_context("worker"))
        except Exception as exc:
            with self._busy_lock:
                self.failures += 1
            log.warning(
                "worker failed on message %s (%s: %s); it will be retried",
                message.message_id,
                type(exc).__name__,
                exc,
            )
            log.debug("worker failure", exc_info=True)
            return False
        with self._busy_lock:
            self.handled += 1
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message.receipt_handle)
        return True

    def _release(self, messages: list[QueuedMessage]) -> None:
        for message in messages:
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message.receipt_handle,
                    VisibilityTimeout=self._retry_seconds,
                )
            except Exception as exc:
                log.warning("could not release message %s: %s", message.message_id, exc)

    def _mark_busy(self, delta: int) -> None:
        with self._busy_lock:
            self._busy += delta


class Scheduler:
    """Calls a scheduled handler every ``interval`` seconds (the first call after one)."""

    def __init__(
        self, name: str, handler: Handler, *, interval: float, rule_arn: str, region: str
    ) -> None:
        self._name = name
        self._handler = handler
        self._interval = interval
        self._rule_arn = rule_arn
        self._region = region
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            event = scheduled_event(rule_arn=self._rule_arn, region=self._region)
            try:
                self._handler(event, lambda_context(self._name))
            except Exception as exc:
                log.warning("scheduled %s failed (%s: %s)", self._name, type(exc).__name__, exc)
                log.debug("scheduled failure", exc_info=True)


def _by_group(
    messages: list[tuple[str, QueuedMessage]],
) -> dict[str, list[QueuedMessage]]:
    groups: dict[str, list[QueuedMessage]] = {}
    for group_id, message in messages:
        groups.setdefault(group_id, []).append(message)
    return groups
