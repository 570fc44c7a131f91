"""Plays Lambda's SQS event source mapping and EventBridge schedules for the local stack.

:class:`QueuePump` receives from the FIFO work queue in the moto server and calls the
worker handler exactly as Lambda's SQS event source mapping does (batch size 1, partial
batch responses on):

- a message is received without overriding the queue's visibility timeout, and deleted
  only when the invocation succeeds and does not list it in ``batchItemFailures``;
- a message whose invocation raised, or that the handler listed as failed, is left alone:
  it reappears only when its visibility timeout runs out (the queue's, or whatever the
  handler set with ChangeMessageVisibility), its FIFO message group stays blocked
  meanwhile (SQS does that), its receive count rises, and once that count passes the
  queue's maxReceiveCount SQS moves it to the dead-letter queue on the next receive
  (moto does that too, in ReceiveMessage, so the pump need not play it).

:class:`TimeFactor` compresses time for the local stack: the queue's visibility timeout
and every ChangeMessageVisibility the app's SQS client makes are divided by the factor and
rounded up, so nothing is retried sooner than AWS would retry it, relatively.
:class:`Scheduler` calls a ``@app.schedule`` handler every few seconds.

Used only by the local stack: it must never be imported by the deployed Lambda, and it
talks only to the moto server it is given.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalice.local import LambdaContext

from chalicelib.local.eventbridge import QueuedMessage, scheduled_event, sqs_event
from chalicelib.local.ticker import Ticker

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
# The SQS calls whose VisibilityTimeout is a duration the app chose (the SQS API reference
# for ChangeMessageVisibility and ChangeMessageVisibilityBatch: whole seconds, 0-43200).
_VISIBILITY_CALLS = ("ChangeMessageVisibility", "ChangeMessageVisibilityBatch")


def lambda_context(function_name: str, timeout_seconds: int = 300) -> Any:
    """A context object with the attributes a real Lambda context has."""
    return LambdaContext(function_name, 512, max_runtime_ms=timeout_seconds * 1000)


@dataclass(frozen=True)
class TimeFactor:
    """Local time runs ``factor`` times faster than AWS time.

    Durations handed to SQS are whole seconds, so a compressed duration is rounded up:
    a wait is never shorter, relatively, than it would be on AWS.
    """

    factor: int = 1
    _started: float = field(default_factory=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(
                f"the time factor must be a whole number of at least 1, not {self.factor}"
            )

    def seconds(self, aws_seconds: int) -> int:
        """The local duration for ``aws_seconds`` of AWS time (0 stays 0, else at least 1)."""
        if aws_seconds <= 0:
            return 0
        return math.ceil(aws_seconds / self.factor)

    def clock(self) -> float:
        """A monotonic clock in AWS seconds: it runs ``factor`` times faster than real time
        (for the strict layer, whose windows are written in AWS seconds)."""
        return self._started + (time.monotonic() - self._started) * self.factor

    def describe(self, queue_visibility_seconds: int) -> str:
        """One line for people, e.g. for the ``branchenv local`` banner."""
        if self.factor == 1:
            return (
                f"time runs as on AWS: the queue's {queue_visibility_seconds} s visibility "
                "timeout is not shortened"
            )
        return (
            f"time runs {self.factor}x faster than on AWS: the queue's "
            f"{queue_visibility_seconds} s visibility timeout is "
            f"{self.seconds(queue_visibility_seconds)} s"
        )

    def compress_queue(self, sqs: Any, queue_url: str) -> int:
        """Divide the queue's visibility timeout by the factor; its AWS value, in seconds."""
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        aws_seconds = int(attributes["VisibilityTimeout"])
        sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={"VisibilityTimeout": str(self.seconds(aws_seconds))},
        )
        return aws_seconds

    def install(self, events: Any) -> None:
        """Divide the VisibilityTimeout of every ChangeMessageVisibility(Batch) made by the
        clients of a botocore/boto3 session whose ``events`` these are."""
        for operation in _VISIBILITY_CALLS:
            events.register(f"before-parameter-build.sqs.{operation}", self._compress)

    def _compress(self, params: dict[str, Any], **_: Any) -> None:
        if "VisibilityTimeout" in params:
            params["VisibilityTimeout"] = self.seconds(int(params["VisibilityTimeout"]))
        for entry in params.get("Entries", []):
            if isinstance(entry, dict) and "VisibilityTimeout" in entry:
                entry["VisibilityTimeout"] = self.seconds(int(entry["VisibilityTimeout"]))


class InvalidBatchResponse(Exception):
    """The handler's partial batch response names no message of its batch properly."""


def failed_message_ids(result: Any, batch: Collection[str]) -> set[str]:
    """The message ids a handler's return value reports as failed, as Lambda reads it.

    Lambda's SQS partial batch responses
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): a null
    or empty response, or a null or empty ``batchItemFailures``, is complete success; an
    itemIdentifier that is null, empty, or not a message of the batch makes the whole batch
    a failure (raised here as :class:`InvalidBatchResponse`).
    """
    if not isinstance(result, dict):
        return set()
    items = result.get("batchItemFailures")
    if not items:
        return set()
    if not isinstance(items, list):
        raise InvalidBatchResponse(f"batchItemFailures is not a list: {items!r}")
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in batch:
            raise InvalidBatchResponse(
                f"itemIdentifier {identifier!r} is not a message of the batch"
            )
        failed.add(identifier)
    return failed


class QueuePump:
    """Feeds the work queue to ``handler``, one message per invocation, until stopped.

    Lambda's event source for a FIFO queue runs one invocation per message group at a time
    and groups in parallel (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html,
    "FIFO queues"). Each receive asks for one message, so a message is only received when
    an invocation is free for it: SQS itself then keeps the rest of its group back while
    it is in flight.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        region: str,
        workers: int = 4,
        idle_seconds: float = 0.1,
        report_batch_item_failures: bool = True,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._region = region
        self._workers = workers
        # Short polls with a pause: a long poll to the moto server holds it for its whole
        # wait, and every other call of the stack (converge's included) queues behind it.
        self._idle_seconds = idle_seconds
        self._partial = report_batch_item_failures
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pump-worker")
        self._thread = threading.Thread(target=self._run, name="pump", daemon=True)
        self._busy = 0
        self._lock = threading.Lock()
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
        with self._lock:
            return self._busy > 0

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._has_free_worker():
                self._stopping.wait(self._idle_seconds / 4)
                continue
            try:
                message = self._receive()
            except Exception as exc:  # the moto server is shutting down, or a hiccup
                if not self._stopping.is_set():
                    log.warning("queue pump could not receive: %s", exc)
                    self._stopping.wait(0.5)
                continue
            if message is None:
                self._stopping.wait(self._idle_seconds)
                continue
            self._mark_busy(+1)
            self._pool.submit(self._invoke, message)

    def _receive(self) -> QueuedMessage | None:
        # No VisibilityTimeout: Lambda's poller leaves the queue's own in force.
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        )
        for raw in answer.get("Messages", []):
            return QueuedMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw["Body"],
                attributes=dict(raw.get("Attributes", {})),
            )
        return None

    def _invoke(self, message: QueuedMessage) -> None:
        try:
            if self._handled(message):
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message.receipt_handle
                )
        except Exception as exc:  # e.g. the moto server went away during shutdown
            if not self._stopping.is_set():
                log.warning("queue pump could not finish message %s: %s", message.message_id, exc)
        finally:
            self._mark_busy(-1)

    def _handled(self, message: QueuedMessage) -> bool:
        """Invoke the handler; True when the message is done and may be deleted."""
        event = sqs_event([message], queue_arn=self._queue_arn, region=self._region)
        try:
            result = self._handler(event, lambda_context("worker"))
            failed = failed_message_ids(result, {message.message_id}) if self._partial else set()
        except Exception as exc:
            self._count_failure(message, f"{type(exc).__name__}: {exc}")
            log.debug("worker failure", exc_info=True)
            return False
        if message.message_id in failed:
            self._count_failure(message, "listed in batchItemFailures")
            return False
        with self._lock:
            self.handled += 1
        return True

    def _count_failure(self, message: QueuedMessage, why: str) -> None:
        with self._lock:
            self.failures += 1
        log.warning(
            "worker did not finish message %s (%s, receive %s); it stays in the queue until "
            "its visibility timeout runs out",
            message.message_id,
            why,
            message.attributes.get("ApproximateReceiveCount", "?"),
        )

    def _has_free_worker(self) -> bool:
        with self._lock:
            return self._busy < self._workers

    def _mark_busy(self, delta: int) -> None:
        with self._lock:
            self._busy += delta


class Scheduler:
    """Calls a scheduled handler every ``interval`` seconds (the first call after one)."""

    def __init__(
        self, name: str, handler: Handler, *, interval: float, rule_arn: str, region: str
    ) -> None:
        self._name = name
        self._handler = handler
        self._rule_arn = rule_arn
        self._region = region
        self._ticker = Ticker(f"schedule-{name}", interval, self._invoke)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def _invoke(self) -> None:
        event = scheduled_event(rule_arn=self._rule_arn, region=self._region)
        self._handler(event, lambda_context(self._name))
