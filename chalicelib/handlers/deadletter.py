"""The dead-letter alert: tell people when work gave up, and what to do about it.

A queue message that failed ``maxReceiveCount`` times is moved by SQS to the dead-letter
queue; the environment it was about may be half-made until something converges it again.
The reaper's sweep calls :meth:`DeadLetters.check`: one look at the dead-letter queue (one
ReceiveMessage, the messages stay there, and one GetQueueAttributes for the count) and,
when dead letters arrived since the last alert, one Slack alert saying how many are new,
how many wait in all, which environments they concern and what to do. A dead letter that
stays in the queue is not announced again on the next sweep (every 15 minutes).

What was announced is remembered in one marker (chalicelib.aws.markers, an item of the
environments table): the ids of the dead letters seen, and the count at the last sweep.
SQS keeps a message's id when it moves it to the dead-letter queue (SQS Developer Guide,
"Using dead-letter queues in Amazon SQS"), so an id tells a new dead letter from one
already announced; the count catches new ones behind the ten one ReceiveMessage returns.
SQS itself offers nothing stateless that is reliable for this: a FIFO dead letter's
enqueue timestamp is reset when it is moved (SQS Developer Guide, "Setting-up
dead-letter queue retention"), but a window of time would miss letters when a sweep is
late and repeat them when two sweeps overlap; ApproximateReceiveCount rises with every
peek.

Must never: delete or change a dead letter (people inspect and redrive them), put a
message body, a secret or a token in the alert, or raise past the sweep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chalicelib.aws.markers import InMemoryMarkers, Marker, Markers
from chalicelib.aws.sqs import DeadLetter
from chalicelib.domain.messages import BranchEvent, MessageError, parse_message

if TYPE_CHECKING:
    from chalicelib.aws.clients import ClientFactory
    from chalicelib.domain.settings import Settings

log = logging.getLogger(__name__)
UNREADABLE = "a message that is not branchenv's"
MARKER = "dead-letter-alert"
KEEP_IDS = 200  # ids remembered (newest kept); far more than one sweep can see


class DeadLetterSource(Protocol):
    """The dead-letter queue (chalicelib.aws.sqs.DeadLetterQueue)."""

    def peek_letters(self, max_messages: int = 10) -> list[DeadLetter]: ...

    def count(self) -> int: ...


class AlertSink(Protocol):
    """Where an alert goes (Slack)."""

    def alert(self, text: str) -> None: ...


class SlackAlerts:
    """Alerts posted to one Slack channel through the SlackNotifier."""

    def __init__(self, post: Callable[[str, str], None], channel: str) -> None:
        self._post = post
        self._channel = channel

    def alert(self, text: str) -> None:
        self._post(self._channel, text)


class DeadLetters:
    """Looks at the dead-letter queue and alerts once per arrival of new dead letters.

    ``memory`` is where the last alert is remembered; without one, an in-memory marker
    (so one instance alerts once, a new instance announces what it finds)."""

    def __init__(
        self,
        queue: DeadLetterSource,
        alerts: AlertSink | None,
        *,
        queue_name: str = "",
        memory: Markers | None = None,
    ) -> None:
        self._queue = queue
        self._alerts = alerts
        self._queue_name = queue_name
        self._memory: Markers = memory if memory is not None else InMemoryMarkers()

    def check(self, *, dry_run: bool = False) -> list[str]:
        """The environments named by dead letters (sorted, each once); alerts unless
        ``dry_run`` when new ones arrived since the last alert. A failure to look, to
        remember or to alert is logged and reported, never raised."""
        try:
            letters = self._queue.peek_letters()
        except Exception as exc:
            log.warning("could not read the dead-letter queue: %s", type(exc).__name__)
            return []
        try:
            total = max(self._queue.count(), len(letters))
        except Exception as exc:  # the ids still tell new letters from announced ones
            log.warning("could not count the dead letters: %s", type(exc).__name__)
            total = len(letters)
        concerned = sorted({environment_of(letter.body) for letter in letters})
        if dry_run or self._alerts is None:
            return concerned
        try:
            self._announce(letters, total, concerned)
        except Exception as exc:
            log.warning("dead-letter alert not delivered: %s", type(exc).__name__)
        return concerned

    def _announce(self, letters: list[DeadLetter], total: int, concerned: list[str]) -> None:
        assert self._alerts is not None
        marker = self._memory.get(MARKER)
        seen = [str(i) for i in marker.value.get("ids", [])]
        fresh = [letter for letter in letters if letter.message_id not in seen]
        new = max(len(fresh), total - int(marker.value.get("total", 0)))
        remembered = {
            "ids": (seen + [letter.message_id for letter in fresh])[-KEEP_IDS:],
            "total": total,
        }
        if new <= 0:
            if remembered != marker.value:  # letters were deleted: remember the lower count
                self._memory.put(MARKER, remembered, version=marker.version)
            return
        # Claim the alert before posting it, so two overlapping sweeps post it once.
        if not self._memory.put(MARKER, remembered, version=marker.version):
            log.info("dead-letter alert left to the sweep that is already posting it")
            return
        named = sorted({environment_of(letter.body) for letter in fresh}) or concerned
        try:
            self._alerts.alert(alert_text(named, self._queue_name, new=new, total=total))
        except Exception:
            self._forget(marker)
            raise

    def _forget(self, before: Marker) -> None:
        """Undo the claim of an alert that was not delivered, so the next sweep posts it."""
        try:
            self._memory.put(MARKER, before.value, version=before.version + 1)
        except Exception as exc:
            log.warning("dead-letter marker not restored: %s", type(exc).__name__)


def environment_of(body: str) -> str:
    """``repository@branch`` for a webhook's message, the slug for an AWS event's."""
    try:
        message = parse_message(json.loads(body))
    except (ValueError, MessageError):
        return UNREADABLE
    if isinstance(message, BranchEvent):
        return f"{message.repository}@{message.branch}"
    return message.slug


def alert_text(concerned: list[str], queue_name: str, *, new: int, total: int) -> str:
    """What the alert says: how many dead letters are new and wait in all, which
    environments they concern, and the steps to take."""
    where = f" ({queue_name})" if queue_name else ""
    listed = ", ".join(f"`{name}`" for name in concerned[:20])
    more = f" and {len(concerned) - 20} more" if len(concerned) > 20 else ""
    letters = "1 new dead letter" if new == 1 else f"{new} new dead letters"
    return (
        f":rotating_light: branchenv gave up on work for {listed}{more}: {letters} since the "
        f"last alert ({total} waiting in all in the dead-letter queue{where}); the messages "
        "failed every retry. These environments may be "
        "half-made or out of date until they converge again. What to do: read the worker's "
        "logs for these names to find the cause and fix it, then push to the branch again "
        "(or run `branchenv reap`) so it converges, and delete the dead letters once done."
    )


def alerts_from_settings(settings: Settings, clients: ClientFactory) -> AlertSink | None:
    """Slack alerts to ``slack_channel`` where Slack is configured; otherwise None."""
    channel = settings.slack_channel
    if not channel or not (settings.slack_token or settings.slack_token_arn):
        return None
    from chalicelib.aws.secrets import Secrets
    from chalicelib.notify.slack import SlackNotifier, slack_client

    token = Secrets.over(settings, clients).slack_token
    slack = SlackNotifier(
        lambda: slack_client(token.current(), settings.slack_api_url),
        lambda env: channel,
        lambda env: "",
    )
    return SlackAlerts(slack.alert, channel)


def dead_letters_from_settings(settings: Settings, clients: ClientFactory) -> DeadLetters:
    """The check the reaper's sweep runs, for the installation ``settings`` describe."""
    from chalicelib.aws.markers import DynamoMarkers
    from chalicelib.aws.sqs import DeadLetterQueue
    from chalicelib.domain.names import BaseNames

    queue = DeadLetterQueue(clients.client("sqs"), settings.queue_url)
    name = BaseNames(settings.app_name).dead_letter_queue
    memory = DynamoMarkers(clients.client("dynamodb"), settings.table_name)
    return DeadLetters(
        queue, alerts_from_settings(settings, clients), queue_name=name, memory=memory
    )
