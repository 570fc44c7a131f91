"""The local queue pump calls the worker exactly as Lambda's SQS event source would.

What Lambda and SQS do with a message the handler did not finish (the Lambda developer
guide, "Handling errors for an SQS event source in Lambda"; the SQS developer guide,
"Amazon SQS visibility timeout" and "dead-letter queues"): it is not deleted, it reappears
only when its visibility timeout runs out, its FIFO group waits meanwhile, its receive
count rises, and after maxReceiveCount receives SQS moves it to the dead-letter queue.
Time runs faster here through :class:`TimeFactor`, never sooner relatively.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.bootstrap import MAX_RECEIVE_COUNT
from chalicelib.local.pump import (
    InvalidBatchResponse,
    QueuePump,
    Scheduler,
    TimeFactor,
    failed_message_ids,
)
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import REGION

Behaviour = Callable[[dict[str, Any], int], Any]


class Worker:
    """Records each invocation (record, monotonic time); ``behaviour(record, n)`` decides
    what the n-th invocation (1-based) does: return a value or raise."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[dict[str, Any], float]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        [record] = event["Records"]
        with self._lock:
            self.calls.append((record, time.monotonic()))
            count = len(self.calls)
        return self.behaviour(record, count) if self.behaviour else None

    def bodies(self) -> list[str]:
        with self._lock:
            return [record["body"] for record, _ in self.calls]

    def times_of(self, body: str) -> list[float]:
        with self._lock:
            return [at for record, at in self.calls if record["body"] == body]


def _raise_on_first_receive_of(body: str) -> Behaviour:
    def behaviour(record: dict[str, Any], count: int) -> Any:
        if record["body"] == body and record["attributes"]["ApproximateReceiveCount"] == "1":
            raise RuntimeError("converge hit a throttling error")
        return None

    return behaviour


def _until(condition: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _send(clients: ClientFactory, queue_url: str, body: str, group: str = "g") -> None:
    clients.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body
    )


def _messages_in(clients: ClientFactory, queue_url: str) -> int:
    attributes = clients.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _visibility(clients: ClientFactory, queue_url: str, seconds: int) -> None:
    clients.client("sqs").set_queue_attributes(
        QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(seconds)}
    )


def _pump(clients: ClientFactory, queue_url: str, worker: Worker) -> QueuePump:
    return QueuePump(clients.client("sqs"), queue_url, worker, region=REGION, idle_seconds=0.02)


def test_handled_message_reaches_the_worker_as_an_sqs_event_and_is_deleted(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    worker = Worker()
    pump = _pump(clients, infra.queue_url, worker)
    _send(clients, infra.queue_url, '{"hello":1}')

    pump.start()
    _until(lambda: bool(worker.calls) and _messages_in(clients, infra.queue_url) == 0)
    pump.stop()

    record = worker.calls[0][0]
    assert record["body"] == '{"hello":1}'
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"]["MessageGroupId"] == "g"
    assert _messages_in(clients, infra.queue_url) == 0


def test_time_factor_divides_the_queue_visibility_timeout_rounding_up(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    aws_seconds = TimeFactor(7).compress_queue(clients.client("sqs"), infra.queue_url)

    attributes = clients.client("sqs").get_queue_attributes(
        QueueUrl=infra.queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    assert aws_seconds == 1800
    assert attributes["VisibilityTimeout"] == "258"  # 1800 / 7 = 257.1..., never shorter


def test_time_factor_never_turns_a_wait_into_no_wait() -> None:
    factor = TimeFactor(100)

    assert [factor.seconds(s) for s in (0, 1, 2, 99, 100, 101, 1800)] == [0, 1, 1, 1, 1, 2, 18]
    assert factor.describe(1800) == (
        "time runs 100x faster than on AWS: the queue's 1800 s visibility timeout is 18 s"
    )


def test_raised_message_reappears_only_after_the_queue_visibility_timeout(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    TimeFactor(1800).compress_queue(clients.client("sqs"), infra.queue_url)  # 1800 s -> 1 s
    worker = Worker(_raise_on_first_receive_of("a"))
    pump = _pump(clients, infra.queue_url, worker)
    _send(clients, infra.queue_url, "a")

    pump.start()
    _until(lambda: len(worker.calls) >= 1)
    time.sleep(0.6)
    seen_early = len(worker.calls)
    _until(lambda: len(worker.calls) >= 2 and _messages_in(clients, infra.queue_url) == 0)
    pump.stop()

    first, second = worker.times_of("a")
    assert seen_early == 1
    assert second - first >= 0.95
    assert [record["attributes"]["ApproximateReceiveCount"] for record, _ in worker.calls] == [
        "1",
        "2",
    ]
    assert pump.failures == 1
    assert _messages_in(clients, infra.queue_url) == 0


def test_group_of_a_failed_message_waits_while_other_groups_proceed(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    TimeFactor(1800).compress_queue(clients.client("sqs"), infra.queue_url)  # 1800 s -> 1 s
    worker = Worker(_raise_on_first_receive_of("a1"))
    pump = _pump(clients, infra.queue_url, worker)
    _send(clients, infra.queue_url, "a1", group="a")
    _send(clients, infra.queue_url, "a2", group="a")
    _send(clients, infra.queue_url, "b1", group="b")

    pump.start()
    _until(lambda: {"a1", "b1"} <= set(worker.bodies()))
    time.sleep(0.5)
    while_blocked = worker.bodies()
    _until(lambda: "a2" in worker.bodies() and _messages_in(clients, infra.queue_url) == 0)
    pump.stop()

    assert sorted(while_blocked) == ["a1", "b1"]
    assert [b for b in worker.bodies() if b.startswith("a")] == ["a1", "a1", "a2"]
    assert worker.times_of("a1")[1] - worker.times_of("a1")[0] >= 0.95


def test_message_listed_in_batch_item_failures_is_kept_and_retried(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    TimeFactor(1800).compress_queue(clients.client("sqs"), infra.queue_url)

    def behaviour(record: dict[str, Any], count: int) -> Any:
        if count == 1:
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        return {"batchItemFailures": []}

    worker = Worker(behaviour)
    pump = _pump(clients, infra.queue_url, worker)
    _send(clients, infra.queue_url, "partial")

    pump.start()
    _until(lambda: len(worker.calls) >= 2 and _messages_in(clients, infra.queue_url) == 0)
    pump.stop()

    first, second = worker.times_of("partial")
    assert second - first >= 0.95
    assert pump.failures == 1
    assert _messages_in(clients, infra.queue_url) == 0


def test_visibility_the_handler_sets_is_divided_by_the_time_factor(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    factor = TimeFactor(60)
    factor.compress_queue(clients.client("sqs"), infra.queue_url)  # 1800 s -> 30 s
    session = boto3.Session(region_name=REGION)
    factor.install(session.events)
    app_sqs = ClientFactory(REGION, session=session).client("sqs")

    def behaviour(record: dict[str, Any], count: int) -> Any:
        if count == 1:  # what the worker does on a wait: come back in 60 s (AWS time)
            app_sqs.change_message_visibility(
                QueueUrl=infra.queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=60,
            )
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        return None

    worker = Worker(behaviour)
    pump = _pump(clients, infra.queue_url, worker)
    _send(clients, infra.queue_url, "wait")

    pump.start()
    _until(lambda: len(worker.calls) >= 2, seconds=6.0)
    pump.stop()

    first, second = worker.times_of("wait")
    assert 0.95 <= second - first < 5.0  # 60 s / 60 = 1 s, not the queue's 30 s


def test_after_max_receive_count_the_message_is_in_the_dead_letter_queue(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    _visibility(clients, infra.queue_url, 0)  # so the test need not wait 20 timeouts

    def always_fail(record: dict[str, Any], count: int) -> Any:
        raise RuntimeError("a bug in converge")

    worker = Worker(always_fail)
    pump = _pump(clients, infra.queue_url, worker)
    _send(clients, infra.queue_url, "poison")

    pump.start()
    _until(lambda: _messages_in(clients, infra.dead_letter_queue_url) == 1)
    pump.stop()

    assert len(worker.calls) == MAX_RECEIVE_COUNT
    assert _messages_in(clients, infra.queue_url) == 0
    assert _messages_in(clients, infra.dead_letter_queue_url) == 1


def test_messages_of_one_group_are_handled_in_order(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    worker = Worker()
    pump = _pump(clients, infra.queue_url, worker)
    for n in range(5):
        _send(clients, infra.queue_url, f'{{"n":{n}}}')

    pump.start()
    _until(lambda: len(worker.calls) >= 5)
    pump.stop()

    assert worker.bodies() == [f'{{"n":{n}}}' for n in range(5)]


def test_batch_response_is_read_as_lambda_reads_it() -> None:
    batch = {"m1"}

    assert failed_message_ids(None, batch) == set()
    assert failed_message_ids({"batchItemFailures": None}, batch) == set()
    assert failed_message_ids({"batchItemFailures": []}, batch) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "m1"}]}, batch) == {"m1"}
    for bad in ("", None, "m2"):
        try:
            failed_message_ids({"batchItemFailures": [{"itemIdentifier": bad}]}, batch)
        except InvalidBatchResponse:
            continue
        raise AssertionError(f"itemIdentifier {bad!r} must fail the whole batch")


def test_scheduler_calls_the_handler_with_a_scheduled_event() -> None:
    calls: list[dict[str, Any]] = []
    scheduler = Scheduler(
        "reaper",
        lambda event, context: calls.append(event),
        interval=0.05,
        rule_arn="arn:aws:events:us-east-1:123456789012:rule/reaper",
        region=REGION,
    )

    scheduler.start()
    _until(lambda: len(calls) >= 2)
    scheduler.stop()

    assert calls[0]["detail-type"] == "Scheduled Event"
    assert calls[0]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/reaper"]
