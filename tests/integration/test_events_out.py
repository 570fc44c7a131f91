"""Events out: "Environment State Change" on the EventBridge bus, read back through a rule
that targets an SQS queue (moto delivers put_events to SQS targets)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.errors import AwsError
from chalicelib.aws.events import SOURCE, STATE_CHANGE, EventPublisher
from chalicelib.domain.environments import Environment, Status
from chalicelib.notify.dispatcher import NotificationDispatcher, StateChangeEvents

BUS = "branchenv-demo"
REPO = "acme/shop"
SHA = "3" * 40
URL = "https://feature-login.preview.example.com"


def subscribe(clients: ClientFactory) -> str:
    """A bus with a rule that sends branchenv's events to a queue; returns the queue url."""
    events, sqs = clients.client("events"), clients.client("sqs")
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(
        Rule="all",
        EventBusName=BUS,
        Targets=[{"Id": "queue", "Arn": arn["Attributes"]["QueueArn"]}],
    )
    return str(queue_url)


def received(clients: ClientFactory, queue_url: str) -> list[dict[str, Any]]:
    answer = clients.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def environment(status: Status) -> Environment:
    return Environment(
        slug="feature-login",
        repository=REPO,
        branch="feature/login",
        desired_sha=SHA,
        deployed_sha=SHA if status == Status.READY else None,
        status=status,
    )


def dispatcher(clients: ClientFactory) -> NotificationDispatcher:
    events = StateChangeEvents(EventPublisher(clients.client("events"), BUS), lambda env: URL)
    return NotificationDispatcher(None, None, events, clock=lambda: 1000.0)


def test_a_state_change_reaches_a_subscriber_of_the_bus(clients: ClientFactory) -> None:
    queue_url = subscribe(clients)
    dispatcher(clients).environment_changed(environment(Status.READY))
    [event] = received(clients, queue_url)
    assert (event["source"], event["detail-type"]) == (SOURCE, STATE_CHANGE)
    assert event["detail"] == {
        "repository": REPO,
        "branch": "feature/login",
        "slug": "feature-login",
        "url": URL,
        "status": "ready",
        "sha": SHA,
    }


def test_a_failure_event_carries_the_reason(clients: ClientFactory) -> None:
    queue_url = subscribe(clients)
    failed = replace(environment(Status.FAILED), reason="The health check failed.")
    dispatcher(clients).environment_changed(failed)
    [event] = received(clients, queue_url)
    assert event["detail"]["reason"] == "The health check failed."


def test_a_failed_redeploy_says_which_commit_still_serves(clients: ClientFactory) -> None:
    queue_url = subscribe(clients)
    previous = "2" * 40
    failed = replace(
        environment(Status.FAILED), deployed_sha=previous, reason="ECS rolled it back."
    )
    first = replace(environment(Status.FAILED), reason="ECS: tasks failed to start.")

    dispatcher(clients).environment_changed(failed)
    dispatcher(clients).environment_changed(first)

    details = [e["detail"] for e in received(clients, queue_url)]
    assert {(d["sha"], d["serving_sha"]) for d in details} == {(SHA, previous), (SHA, None)}


def test_each_status_is_published_once(clients: ClientFactory) -> None:
    queue_url = subscribe(clients)
    notifier = dispatcher(clients)
    env = notifier.environment_changed(environment(Status.BUILDING))
    env = notifier.environment_changed(env)
    env = notifier.environment_changed(replace(env, status=Status.DEPLOYING))
    statuses = [e["detail"]["status"] for e in received(clients, queue_url)]
    assert sorted(statuses) == ["building", "deploying"]


def test_publish_to_a_missing_bus_raises_aws_error(clients: ClientFactory) -> None:
    publisher = EventPublisher(clients.client("events"), "no-such-bus")
    with pytest.raises(AwsError) as exc:
        publisher.publish(STATE_CHANGE, {"status": "ready"})
    assert exc.value.operation == "PutEvents"


def test_a_missing_bus_is_recorded_not_raised(clients: ClientFactory) -> None:
    events = StateChangeEvents(
        EventPublisher(clients.client("events"), "no-such-bus"), lambda env: URL
    )
    notifier = NotificationDispatcher(None, None, events, clock=lambda: 1000.0)
    env = notifier.environment_changed(environment(Status.READY))
    assert env.notifications["errors"]["events"]["at"] == 1000.0


def test_sleeping_and_waking_are_each_a_state_change_event(clients: ClientFactory) -> None:
    queue_url = subscribe(clients)
    notifier = dispatcher(clients)
    env = notifier.environment_changed(environment(Status.READY))
    env = notifier.environment_changed(replace(env, status=Status.SLEEPING, asleep=True))
    env = notifier.environment_changed(env)  # a repeated converge while asleep: no event
    notifier.environment_changed(replace(env, status=Status.READY, asleep=False))
    details = [e["detail"] for e in received(clients, queue_url)]
    assert sorted(d["status"] for d in details) == ["ready", "ready", "sleeping"]
    [sleeping] = [d for d in details if d["status"] == "sleeping"]
    assert sleeping == {
        "repository": REPO,
        "branch": "feature/login",
        "slug": "feature-login",
        "url": URL,
        "status": "sleeping",
        "sha": SHA,
    }
