"""The work queue's gateway: a waiting message's visibility is shortened on the queue
(moto), a stale receipt handle is ignored, and the redrive policy's maxReceiveCount is
read once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.stub import Stubber

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.errors import AwsError
from chalicelib.aws.sqs import WorkQueue
from chalicelib.domain.settings import Settings
from chalicelib.local.bootstrap import MAX_RECEIVE_COUNT
from chalicelib.tools.infra import BaseInfrastructure

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/demo-work.fifo"


def received(clients: ClientFactory, settings: Settings, *, hold: int = 300) -> list[Any]:
    answer = clients.client("sqs").receive_message(
        QueueUrl=settings.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=hold
    )
    return list(answer.get("Messages", []))


def enqueued(clients: ClientFactory, settings: Settings) -> tuple[WorkQueue, str]:
    queue = WorkQueue(clients.client("sqs"), settings.queue_url)
    queue.send({"type": "converge", "slug": "feature-login"}, group_id="g1", dedup_id="d1")
    [message] = received(clients, settings)
    return queue, str(message["ReceiptHandle"])


def stubbed(code: str, message: str) -> WorkQueue:
    """A WorkQueue whose client answers ChangeMessageVisibility with SQS error ``code``."""
    client = ClientFactory("us-east-1").client("sqs")
    stubber = Stubber(client)
    stubber.add_client_error(
        "change_message_visibility",
        service_error_code=code,
        service_message=message,
        http_status_code=400,
    )
    stubber.activate()
    return WorkQueue(client, URL)


def test_a_visibility_of_zero_makes_the_message_receivable_at_once(
    infra: BaseInfrastructure, settings: Settings, clients: ClientFactory
) -> None:
    queue, handle = enqueued(clients, settings)
    assert received(clients, settings) == []  # held for 300 s by the first receive

    queue.change_visibility(handle, 0)

    [again] = received(clients, settings)
    assert again["Body"] == '{"slug":"feature-login","type":"converge"}'


def test_the_delay_is_asked_of_the_work_queue_for_that_message(
    infra: BaseInfrastructure, settings: Settings, clients: ClientFactory
) -> None:
    queue, handle = enqueued(clients, settings)
    sent: list[dict[str, Any]] = []
    clients.client("sqs").meta.events.register(
        "before-parameter-build.sqs.ChangeMessageVisibility",
        lambda params, **kwargs: sent.append(dict(params)),
    )

    queue.change_visibility(handle, 7)

    assert sent == [
        {"QueueUrl": settings.queue_url, "ReceiptHandle": handle, "VisibilityTimeout": 7}
    ]
    assert received(clients, settings) == []  # still held, now for 7 s rather than 300 s


def test_a_handle_of_a_deleted_message_is_logged_and_ignored(
    infra: BaseInfrastructure,
    settings: Settings,
    clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue, handle = enqueued(clients, settings)
    clients.client("sqs").delete_message(QueueUrl=settings.queue_url, ReceiptHandle=handle)

    with caplog.at_level(logging.INFO, logger="chalicelib.aws.sqs"):
        queue.change_visibility(handle, 5)

    assert "no longer in flight (ReceiptHandleIsInvalid)" in caplog.text
    assert handle not in caplog.text


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "InvalidParameterValue",
            "Value AQEBx for parameter ReceiptHandle is invalid. Reason: The receipt handle "
            "has expired.",
        ),
        ("AWS.SimpleQueueService.MessageNotInflight", "The message referred to isn't in flight."),
        ("ReceiptHandleIsInvalid", "The input receipt handle is invalid."),
    ],
)
def test_an_expired_or_not_in_flight_handle_is_ignored(code: str, message: str) -> None:
    stubbed(code, message).change_visibility("AQEBx", 5)  # no exception


def test_another_invalid_parameter_is_raised() -> None:
    queue = stubbed(
        "InvalidParameterValue", "Value 99999 for parameter VisibilityTimeout is invalid."
    )
    with pytest.raises(AwsError) as exc:
        queue.change_visibility("AQEBx", 5)
    assert (exc.value.operation, exc.value.code) == (
        "ChangeMessageVisibility",
        "InvalidParameterValue",
    )


def test_access_denied_is_raised_translated() -> None:
    with pytest.raises(AwsError, match="AccessDenied"):
        stubbed("AccessDenied", "not authorized").change_visibility("AQEBx", 5)


@pytest.mark.parametrize("seconds", [-1, 12 * 3600 + 1])
def test_a_timeout_sqs_would_refuse_is_a_value_error(seconds: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.43200"):
        WorkQueue(object(), URL).change_visibility("AQEBx", seconds)


def test_max_receive_count_is_the_redrive_policys_and_read_once(
    infra: BaseInfrastructure, settings: Settings, clients: ClientFactory
) -> None:
    client = clients.client("sqs")
    calls: list[str] = []
    client.meta.events.register(
        "before-call.sqs.GetQueueAttributes", lambda **kwargs: calls.append("get")
    )
    queue = WorkQueue(client, settings.queue_url)

    assert queue.max_receive_count() == MAX_RECEIVE_COUNT
    assert queue.max_receive_count() == MAX_RECEIVE_COUNT
    assert calls == ["get"]


def test_max_receive_count_without_a_redrive_policy_is_none(clients: ClientFactory) -> None:
    sqs = clients.client("sqs")
    url = sqs.create_queue(
        QueueName="plain.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]

    assert WorkQueue(sqs, url).max_receive_count() is None
