"""The dead-letter alert is posted once per arrival of new dead letters, with how many
are new and how many wait, and remembered across sweeps (and Lambda invocations) in one
marker item of the environments table; the dead letters themselves are never touched."""

from __future__ import annotations

import itertools
import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.aws.markers import DynamoMarkers, InMemoryMarkers, Marker
from chalicelib.aws.sqs import DeadLetter, DeadLetterQueue
from chalicelib.domain.settings import Settings
from chalicelib.handlers.deadletter import MARKER, DeadLetters

_ids = itertools.count(1)


class RecordedAlerts:
    def __init__(self, failures: int = 0) -> None:
        self.texts: list[str] = []
        self.failures = failures

    def alert(self, text: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Slack is down")
        self.texts.append(text)


def dead_letter_queue(settings: Settings, clients: ClientFactory) -> DeadLetterQueue:
    return DeadLetterQueue(clients.client("sqs"), settings.queue_url)


def die(settings: Settings, clients: ClientFactory, slug: str) -> None:
    """A converge request for ``slug`` that SQS gave up on, as it sits in the DLQ."""
    url = dead_letter_queue(settings, clients).url()
    body = {"type": "converge", "slug": slug, "cause": "test", "detail": {}}
    clients.client("sqs").send_message(
        QueueUrl=url,
        MessageBody=json.dumps(body),
        MessageGroupId=slug,
        MessageDeduplicationId=str(next(_ids)),
    )


def check(settings: Settings, clients: ClientFactory, alerts: RecordedAlerts) -> DeadLetters:
    """The check as the reaper's sweep builds it: remembering in the environments table."""
    return DeadLetters(
        dead_letter_queue(settings, clients),
        alerts,
        queue_name="demo-work-dlq.fifo",
        memory=DynamoMarkers(clients.client("dynamodb"), settings.table_name),
    )


def test_a_dead_letter_is_announced_once_not_on_every_sweep(
    settings: Settings, clients: ClientFactory
) -> None:
    die(settings, clients, "feature-a")
    alerts = RecordedAlerts()

    first = check(settings, clients, alerts).check()
    second = check(settings, clients, alerts).check()  # a later invocation, a new instance

    assert first == second == ["feature-a"]
    [text] = alerts.texts
    assert "`feature-a`: 1 new dead letter since the last alert (1 waiting in all" in text
    assert "demo-work-dlq.fifo" in text and "What to do" in text
    assert dead_letter_queue(settings, clients).count() == 1  # left for people


def test_new_dead_letters_are_announced_with_how_many_are_new_and_waiting(
    settings: Settings, clients: ClientFactory
) -> None:
    alerts = RecordedAlerts()
    die(settings, clients, "feature-a")
    check(settings, clients, alerts).check()
    die(settings, clients, "feature-b")
    die(settings, clients, "feature-c")

    check(settings, clients, alerts).check()

    assert len(alerts.texts) == 2
    assert (
        "`feature-b`, `feature-c`: 2 new dead letters since the last alert (3 waiting"
        in (alerts.texts[1])
    )


def test_dead_letters_beyond_one_receive_are_counted(
    settings: Settings, clients: ClientFactory
) -> None:
    alerts = RecordedAlerts()
    for n in range(12):
        die(settings, clients, f"feature-{n}")
    check(settings, clients, alerts).check()
    die(settings, clients, "feature-late")

    check(settings, clients, alerts).check()

    assert "12 new dead letters since the last alert (12 waiting" in alerts.texts[0]
    assert "1 new dead letter since the last alert (13 waiting" in alerts.texts[1]


def test_an_alert_that_failed_is_posted_by_the_next_sweep(
    settings: Settings, clients: ClientFactory
) -> None:
    die(settings, clients, "feature-a")
    alerts = RecordedAlerts(failures=1)

    assert check(settings, clients, alerts).check() == ["feature-a"]  # never raises
    check(settings, clients, alerts).check()
    check(settings, clients, alerts).check()

    assert len(alerts.texts) == 1 and "1 new dead letter" in alerts.texts[0]


def test_a_dry_run_neither_alerts_nor_remembers(settings: Settings, clients: ClientFactory) -> None:
    die(settings, clients, "feature-a")
    alerts = RecordedAlerts()

    assert check(settings, clients, alerts).check(dry_run=True) == ["feature-a"]
    check(settings, clients, alerts).check()

    assert len(alerts.texts) == 1


def test_deleting_dead_letters_alerts_nobody(settings: Settings, clients: ClientFactory) -> None:
    alerts = RecordedAlerts()
    die(settings, clients, "feature-a")
    die(settings, clients, "feature-b")
    check(settings, clients, alerts).check()
    sqs = clients.client("sqs")
    url = dead_letter_queue(settings, clients).url()
    [letter, *_] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=letter["ReceiptHandle"])

    check(settings, clients, alerts).check()

    assert len(alerts.texts) == 1


def test_an_overlapping_sweep_that_lost_the_claim_does_not_post_again() -> None:
    class Racing(InMemoryMarkers):
        """Another sweep claims the alert between this sweep's read and its write."""

        def get(self, name: str) -> Marker:
            found = super().get(name)
            super().put(name, {"ids": ["x"], "total": 1}, version=found.version)
            return found

    class OneLetter:
        def peek_letters(self, max_messages: int = 10) -> list[DeadLetter]:
            return [DeadLetter("x", '{"type":"converge","slug":"feature-a"}')]

        def count(self) -> int:
            return 1

    alerts = RecordedAlerts()
    DeadLetters(OneLetter(), alerts, memory=Racing()).check()

    assert alerts.texts == []


def test_the_marker_is_under_a_key_no_environment_can_take(
    settings: Settings, clients: ClientFactory
) -> None:
    die(settings, clients, "feature-a")
    check(settings, clients, RecordedAlerts()).check()
    store = DynamoEnvironmentStore(clients.client("dynamodb"), settings.table_name)

    item = clients.client("dynamodb").get_item(
        TableName=settings.table_name, Key={"pk": {"S": f"marker#{MARKER}"}}
    )["Item"]

    assert json.loads(item["body"]["S"])["total"] == 1
    assert list(store.scan()) == [] and list(store.priority_claims()) == []


def test_dynamo_markers_refuse_a_stale_version(settings: Settings, clients: ClientFactory) -> None:
    markers = DynamoMarkers(clients.client("dynamodb"), settings.table_name)

    assert markers.get("m") == Marker({}, 0)
    assert markers.put("m", {"n": 1}, version=0)
    assert not markers.put("m", {"n": 2}, version=0)
    assert markers.put("m", {"n": 3}, version=1)
    assert markers.get("m") == Marker({"n": 3}, 2)


def test_a_count_sqs_refuses_still_lets_the_ids_tell_new_letters(
    settings: Settings, clients: ClientFactory
) -> None:
    die(settings, clients, "feature-a")
    sqs = clients.client("sqs")
    url = dead_letter_queue(settings, clients).url()

    def refuse(params: dict[str, Any], **kwargs: Any) -> None:
        if params.get("QueueUrl") == url:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                "GetQueueAttributes",
            )

    sqs.meta.events.register("before-parameter-build.sqs.GetQueueAttributes", refuse)
    alerts = RecordedAlerts()

    check(settings, clients, alerts).check()
    check(settings, clients, alerts).check()

    [text] = alerts.texts
    assert "1 new dead letter since the last alert (1 waiting" in text
