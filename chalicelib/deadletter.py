"""The dead-letter alert: tell people when work gave up, and what to do about it.

A queue message that failed ``maxReceiveCount`` times is moved by SQS to the dead-letter
queue; the environment it was about may be half-made until something converges it again.
The reaper's sweep calls :meth:`DeadLetters.check`: one look at the dead-letter queue (one
ReceiveMessage, the messages stay there) and, when it holds anything, one Slack alert
naming the environments concerned and what to do.

Must never: delete or change a dead letter (people inspect and redrive them), put a
message body, a secret or a token in the alert, or raise past the sweep.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chalicelib.messages import BranchEvent, MessageError, parse_message

if TYPE_CHECKING:
    from chalicelib.aws.clients import ClientFactory
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)
UNREADABLE = "a message that is not branchenv's"


class DeadLetterSource(Protocol):
    """The dead-letter queue (chalicelib.aws.sqs.DeadLetterQueue)."""

    def peek(self, max_messages: int = 10) -> list[str]: ...


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
    """Looks at the dead-letter queue and alerts when it holds messages."""

    def __init__(
        self, queue: DeadLetterSource, alerts: AlertSink | None, *, queue_name: str = ""
    ) -> None:
        self._queue = queue
        self._alerts = alerts
        self._queue_name = queue_name

    def check(self, *, dry_run: bool = False) -> list[str]:
        """The environments named by dead letters (sorted, each once); alerts unless
        ``dry_run``. A failure to look or to alert is logged and reported, never raised."""
        try:
            bodies = self._queue.peek()
        except Exception as exc:
            log.warning("could not read the dead-letter queue: %s", type(exc).__name__)
            return []
        concerned = sorted({environment_of(body) for body in bodies})
        if concerned and not dry_run and self._alerts is not None:
            try:
                self._alerts.alert(alert_text(concerned, self._queue_name))
            except Exception as exc:
                log.warning("dead-letter alert not delivered: %s", type(exc).__name__)
        return concerned


def environment_of(body: str) -> str:
    """``repository@branch`` for a webhook's message, the slug for an AWS event's."""
    try:
        message = parse_message(json.loads(body))
    except (ValueError, MessageError):
        return UNREADABLE
    if isinstance(message, BranchEvent):
        return f"{message.repository}@{message.branch}"
    return message.slug


def alert_text(concerned: list[str], queue_name: str) -> str:
    """What the alert says: which environments, and the steps to take."""
    where = f" ({queue_name})" if queue_name else ""
    listed = ", ".join(f"`{name}`" for name in concerned[:20])
    more = f" and {len(concerned) - 20} more" if len(concerned) > 20 else ""
    return (
        f":rotating_light: branchenv gave up on work for {listed}{more}: the messages failed "
        f"every retry and are in the dead-letter queue{where}. These environments may be "
        "half-made or out of date until they converge again. What to do: read the worker's "
        "logs for these names to find the cause and fix it, then push to the branch again "
        "(or run `branchenv reap`) so it converges, and delete the dead letters once done."
    )


def alerts_from_settings(settings: Settings, clients: ClientFactory) -> AlertSink | None:
    """Slack alerts to ``slack_channel`` where Slack is configured; otherwise None."""
    channel = settings.slack_channel
    if not channel or not (settings.slack_token or settings.slack_token_arn):
        return None
    from chalicelib.notify.slack import SlackNotifier, slack_client

    def token() -> str:
        if settings.slack_token:
            return settings.slack_token
        from chalicelib.aws.secrets import SecretValues

        assert settings.slack_token_arn is not None
        return SecretValues(clients.client("secretsmanager")).get(settings.slack_token_arn)

    slack = SlackNotifier(
        lambda: slack_client(token().strip(), settings.slack_api_url),
        lambda env: channel,
        lambda env: "",
    )
    return SlackAlerts(slack.alert, channel)


def dead_letters_from_settings(settings: Settings, clients: ClientFactory) -> DeadLetters:
    """The check the reaper's sweep runs, for the installation ``settings`` describe."""
    from chalicelib.aws.sqs import DeadLetterQueue
    from chalicelib.infra import BaseNames

    queue = DeadLetterQueue(clients.client("sqs"), settings.queue_url)
    name = BaseNames(settings.app_name).dead_letter_queue
    return DeadLetters(queue, alerts_from_settings(settings, clients), queue_name=name)
