"""A wait costs its own backoff, never the queue's visibility timeout (issue 12).

Lambda's SQS event source leaves a failed message invisible for the queue's whole
visibility timeout, with its FIFO group blocked, and counts the failure towards
maxReceiveCount (Lambda developer guide, "Handling errors for an SQS event source in
Lambda"; SQS developer guide, "Visibility timeout"). moto plays none of Lambda, so these
tests call the Lambda handler in app.py with the event Lambda would build from a message
received from the queue, and look at what SQS then holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import app
from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from chalicelib.handlers.worker import backoff_seconds, longest_wait_seconds
from chalicelib.local.bootstrap import MAX_RECEIVE_COUNT
from tests.integration.harness import World, sha_of

BRANCH = "feature/login"


class VisibilityLog:
    """Every ChangeMessageVisibility the worker sends (a ``provide-client-params`` hook)."""

    def __init__(self, clients: ClientFactory) -> None:
        self.timeouts: list[int] = []
        clients.client("sqs").meta.events.register(
            "provide-client-params.sqs.ChangeMessageVisibility", self._remember
        )

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self.timeouts.append(int(params["VisibilityTimeout"]))


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> Iterator[World]:
    world = World(settings, clients)
    app.use_runtime(world.runtime)
    yield world
    app.use_runtime(None)


def lambda_event(world: World) -> dict[str, Any]:
    """Receive the next message as Lambda's poller does and wrap it as Lambda's event."""
    answer = world.clients.client("sqs").receive_message(
        QueueUrl=world.settings.queue_url,
        MaxNumberOfMessages=1,
        MessageSystemAttributeNames=["All"],
    )
    [message] = answer["Messages"]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:demo-work.fifo",
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}


def enqueue_push(world: World, sha: str) -> None:
    event = world.push(BRANCH, sha)
    world.runtime.queue.send(event.to_message(), group_id="g", dedup_id=f"push-{sha}")


def queue_is_empty(world: World) -> bool:
    answer = world.clients.client("sqs").receive_message(
        QueueUrl=world.settings.queue_url, MaxNumberOfMessages=1
    )
    return not answer.get("Messages")


def test_the_backoff_grows_from_two_seconds_to_a_minute() -> None:
    assert [backoff_seconds(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]


def test_the_reapers_stuck_limit_outlasts_the_longest_chain_of_waits(
    settings: Settings,
) -> None:
    assert MAX_RECEIVE_COUNT == 20
    assert longest_wait_seconds(MAX_RECEIVE_COUNT) < settings.stuck_minutes * 60


def test_a_waiting_converge_reports_its_message_and_sets_a_short_visibility(
    world: World,
) -> None:
    seen = VisibilityLog(world.clients)
    world.push_image(sha_of(1))
    enqueue_push(world, sha_of(1))
    event = lambda_event(world)

    # CreateService right after CreateRule: ECS refuses until the rule has propagated.
    answer = app.worker(event, None)

    message_id = event["Records"][0]["messageId"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert seen.timeouts == [backoff_seconds(1)]  # 2 s, not the queue's 30 minutes
    assert queue_is_empty(world)  # invisible meanwhile: its FIFO group waits 2 s, no more
    env = world.env(BRANCH)
    assert env is not None and env.status != Status.FAILED


def test_the_last_receive_gives_up_waiting_instead_of_dead_lettering(world: World) -> None:
    world.push_image(sha_of(1))
    enqueue_push(world, sha_of(1))
    event = lambda_event(world)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(MAX_RECEIVE_COUNT - 1)

    answer = app.worker(event, None)

    assert answer == {"batchItemFailures": []}  # done: Lambda deletes it
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "gave up" in env.reason and "ECS" in env.reason


def test_a_larger_max_receive_count_does_not_make_waits_longer(world: World) -> None:
    sqs = world.clients.client("sqs")
    url = world.settings.queue_url
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    policy["maxReceiveCount"] = 1000
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})
    world.push_image(sha_of(1))
    enqueue_push(world, sha_of(1))
    event = lambda_event(world)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(MAX_RECEIVE_COUNT - 1)

    assert app.worker(event, None) == {"batchItemFailures": []}
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED  # gave up after ~14 minutes


def test_a_message_handled_in_full_is_done_and_deleted_by_lambda(world: World) -> None:
    seen = VisibilityLog(world.clients)
    enqueue_push(world, sha_of(1))  # no image yet: building, nothing to wait for
    event = lambda_event(world)

    assert app.worker(event, None) == {"batchItemFailures": []}
    assert seen.timeouts == []
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.BUILDING


def test_a_message_that_is_not_branchenvs_is_dropped(world: World) -> None:
    world.runtime.queue.send({"hello": "world"}, group_id="g", dedup_id="junk")
    event = lambda_event(world)

    assert app.worker(event, None) == {"batchItemFailures": []}


def test_an_aws_error_is_retried_after_its_backoff_not_the_visibility_timeout(
    world: World,
) -> None:
    seen = VisibilityLog(world.clients)
    body = json.dumps({"type": "converge", "slug": "nobody", "cause": "test", "detail": {}})
    world.clients.client("sqs").send_message(
        QueueUrl=world.settings.queue_url,
        MessageBody=body,
        MessageGroupId="g",
        MessageDeduplicationId="c1",
    )
    event = lambda_event(world)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
    dynamodb = world.clients.client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.GetItem", _unavailable)
    try:
        answer = app.worker(event, None)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.GetItem", _unavailable)

    assert len(answer["batchItemFailures"]) == 1
    assert seen.timeouts == [backoff_seconds(3)]


def _unavailable(**_: Any) -> None:
    from botocore.exceptions import ClientError

    error = {"Code": "InternalServerError", "Message": "injected: DynamoDB unavailable"}
    raise ClientError({"Error": error}, "GetItem")


def test_giving_up_never_fails_a_ready_preview(world: World) -> None:
    world.make_ready(BRANCH, sha_of(1))
    slug = world.names(BRANCH).slug

    world.runtime.converger.give_up(slug, "gave up after waiting: GitHub did not answer")

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(1)


def test_a_refused_change_of_visibility_still_reports_the_message(world: World) -> None:
    world.push_image(sha_of(1))
    enqueue_push(world, sha_of(1))
    event = lambda_event(world)
    sqs = world.clients.client("sqs")
    sqs.meta.events.register("before-call.sqs.ChangeMessageVisibility", _unavailable)
    try:
        answer = app.worker(event, None)  # CreateService waits; SQS refuses the backoff
    finally:
        sqs.meta.events.unregister("before-call.sqs.ChangeMessageVisibility", _unavailable)

    assert len(answer["batchItemFailures"]) == 1  # back after the queue's timeout instead
