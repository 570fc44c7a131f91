"""Retries and pacing: every client retries in adaptive mode; a call that fails inside
converge leaves the queue message for SQS to deliver again; a message that fails every
time ends in the dead-letter queue, and the reaper's sweep alerts Slack about it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from chalicelib.aws.errors import AwsError
from chalicelib.aws.sqs import DeadLetterQueue
from chalicelib.domain.environments import Status, StoreError
from chalicelib.domain.messages import BranchEvent
from chalicelib.domain.settings import Settings
from chalicelib.handlers.deadletter import DeadLetters, dead_letters_from_settings
from chalicelib.handlers.reaper import Reaper
from chalicelib.local.bootstrap import MAX_RECEIVE_COUNT
from chalicelib.local.standins import StandIns
from chalicelib.runtime import Runtime
from tests.conftest import WEBHOOK_SECRET
from tests.integration.faults import FaultInjector
from tests.integration.harness import World, sha_of

BRANCH = "feature/retried"
SERVICES = ("dynamodb", "ecs", "elbv2", "route53", "ecr", "sqs", "events", "codebuild")
SLACK_TOKEN = "xoxb-dead-letter-test-token"
NOT_SQS = ("dynamodb", "ecs", "elbv2", "route53", "ecr")  # the worker fails, not the receive


class RecordedAlerts:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def alert(self, text: str) -> None:
        self.texts.append(text)


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with StandIns(slack_token=SLACK_TOKEN) as running:
        yield running


def enqueue(world: World, event: BranchEvent) -> None:
    group = world.names(event.branch).queue_group_id
    world.runtime.queue.send(event.to_message(), group_id=group, dedup_id=event.delivery_id)


def messages(world: World, queue_url: str) -> int:
    attributes = world.clients.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def dead_letter_url(world: World) -> str:
    url = DeadLetterQueue(world.clients.client("sqs"), world.settings.queue_url).url()
    assert url is not None
    return url


def sweep(world: World, dead_letters: DeadLetters, *, dry_run: bool = False) -> list[str]:
    rt = world.runtime
    reaper = Reaper(
        settings=world.settings,
        store=rt.store,
        converger=rt.converger,
        repo_configs=rt.converger.repo_configs,
        inventory=rt.inventory,
        github=None,
        dead_letters=dead_letters,
    )
    return reaper.run(dry_run=dry_run).dead_letters


def poison(world: World, faults: FaultInjector) -> None:
    """A push whose every delivery fails, received until SQS gives up on it."""
    world.push_image(sha_of(1))
    enqueue(world, world.push(BRANCH, sha_of(1)))
    for _ in range(MAX_RECEIVE_COUNT):
        faults.reset(fail_at=1, kind="server-error", when="before")
        with pytest.raises(StoreError, match="InternalFailure"):
            world.drain()
    faults.reset()
    assert world.drain() == 0  # SQS moved it to the dead-letter queue on the next receive


@pytest.mark.parametrize("service", SERVICES)
def test_every_client_retries_in_adaptive_mode(settings: Settings, service: str) -> None:
    client = Runtime(settings).clients.client(service)

    retries = client.meta.config.retries
    assert retries["mode"] == "adaptive"
    assert retries["total_max_attempts"] >= 5


@pytest.mark.parametrize("kind", ["throttling", "server-error", "read-timeout"])
def test_a_failed_call_inside_converge_leaves_the_message_for_a_retry(
    world: World, kind: str
) -> None:
    faults = FaultInjector(world.clients)
    world.push_image(sha_of(1))
    world.deliver(world.push("probe", sha_of(1)))  # the ECR repository URI is now cached
    faults.reset()
    world.deliver(world.push("probe-2", sha_of(1)))
    # A call of converge's own, in a gateway: registering the task definition.
    register = faults.calls.index("RegisterTaskDefinition") + 1
    enqueue(world, world.push(BRANCH, sha_of(1)))
    faults.reset(fail_at=register, kind=kind, when="before")

    with pytest.raises(AwsError) as failure:
        world.drain()

    assert failure.value.retryable
    assert messages(world, world.settings.queue_url) == 1
    assert world.drain() == 1
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    assert messages(world, world.settings.queue_url) == 0


def test_a_message_that_always_fails_ends_in_the_dead_letter_queue(world: World) -> None:
    poison(world, FaultInjector(world.clients, services=NOT_SQS))

    assert messages(world, world.settings.queue_url) == 0
    assert messages(world, dead_letter_url(world)) == 1


def test_the_sweep_alerts_about_dead_letters_and_leaves_them(world: World) -> None:
    poison(world, FaultInjector(world.clients, services=NOT_SQS))
    alerts = RecordedAlerts()
    check = DeadLetters(
        DeadLetterQueue(world.clients.client("sqs"), world.settings.queue_url), alerts
    )

    concerned = sweep(world, check)

    assert concerned == [f"baxterthehacker/public-repo@{BRANCH}"]
    [text] = alerts.texts
    assert f"baxterthehacker/public-repo@{BRANCH}" in text and "What to do" in text
    assert messages(world, dead_letter_url(world)) == 1  # left for people to inspect


def test_a_dry_run_sweep_names_dead_letters_without_alerting(world: World) -> None:
    poison(world, FaultInjector(world.clients, services=NOT_SQS))
    alerts = RecordedAlerts()
    check = DeadLetters(
        DeadLetterQueue(world.clients.client("sqs"), world.settings.queue_url), alerts
    )

    assert sweep(world, check, dry_run=True) == [f"baxterthehacker/public-repo@{BRANCH}"]
    assert alerts.texts == []


def test_an_empty_dead_letter_queue_alerts_nobody(world: World) -> None:
    alerts = RecordedAlerts()
    check = DeadLetters(
        DeadLetterQueue(world.clients.client("sqs"), world.settings.queue_url), alerts
    )

    assert sweep(world, check) == []
    assert alerts.texts == []


def test_the_dead_letter_alert_reaches_slack_without_a_secret(
    world: World, standins: StandIns
) -> None:
    poison(world, FaultInjector(world.clients, services=NOT_SQS))
    settings = replace(
        world.settings,
        slack_token=SLACK_TOKEN,
        slack_api_url=standins.slack_api_url,
        slack_channel="#previews",
    )

    concerned = dead_letters_from_settings(settings, world.clients).check()

    assert concerned == [f"baxterthehacker/public-repo@{BRANCH}"]
    [call] = [c for c in standins.slack_record()["calls"] if c["method"] == "chat.postMessage"]
    assert f"@{BRANCH}" in call["text"] and "demo-work-dlq.fifo" in call["text"]
    body = json.dumps(call)
    assert SLACK_TOKEN not in body and WEBHOOK_SECRET not in body
