"""The local queue pump calls the worker as Lambda's SQS event source would, with retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.aws.clients import ClientFactory
from chalicelib.infra import BaseInfrastructure
from chalicelib.local.pump import QueuePump, Scheduler
from tests.conftest import REGION


class Worker:
    """Records the SQS events it is given; raises for the first ``failures`` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        self.events.append(event)
        if len(self.events) <= self.failures:
            raise RuntimeError("converge hit a throttling error")

    def bodies(self) -> list[str]:
        return [record["body"] for event in self.events for record in event["Records"]]


def _until(condition: Callable[[], bool], seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)


def _send(clients: ClientFactory, infra: BaseInfrastructure, body: str) -> None:
    clients.client("sqs").send_message(
        QueueUrl=infra.queue_url, MessageBody=body, MessageGroupId="g", MessageDeduplicationId=body
    )


def _visible_and_in_flight(clients: ClientFactory, infra: BaseInfrastructure) -> int:
    attributes = clients.client("sqs").get_queue_attributes(
        QueueUrl=infra.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_handled_message_reaches_the_worker_as_an_sqs_event_and_is_deleted(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    worker = Worker()
    pump = QueuePump(clients.client("sqs"), infra.queue_url, worker, region=REGION)
    _send(clients, infra, '{"hello":1}')

    pump.start()
    _until(lambda: bool(worker.events) and _visible_and_in_flight(clients, infra) == 0)
    pump.stop()

    [record] = worker.events[0]["Records"]
    assert record["body"] == '{"hello":1}'
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"]["MessageGroupId"] == "g"
    assert _visible_and_in_flight(clients, infra) == 0


def test_failed_message_is_retried_after_the_retry_delay(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    worker = Worker(failures=1)
    pump = QueuePump(clients.client("sqs"), infra.queue_url, worker, region=REGION, retry_seconds=1)
    _send(clients, infra, '{"retry":1}')

    pump.start()
    _until(lambda: len(worker.events) >= 2 and _visible_and_in_flight(clients, infra) == 0)
    pump.stop()

    assert worker.bodies() == ['{"retry":1}', '{"retry":1}']
    assert pump.failures == 1
    assert _visible_and_in_flight(clients, infra) == 0


def test_messages_of_one_group_are_handled_in_order(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    worker = Worker()
    pump = QueuePump(clients.client("sqs"), infra.queue_url, worker, region=REGION)
    for n in range(5):
        _send(clients, infra, f'{{"n":{n}}}')

    pump.start()
    _until(lambda: len(worker.events) >= 5)
    pump.stop()

    assert worker.bodies() == [f'{{"n":{n}}}' for n in range(5)]


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
