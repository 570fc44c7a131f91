"""The notifier converge calls: fans an environment change out to Slack, GitHub and the
event bus, each on its own, and records what each delivered or why it could not.

Must never: raise (every channel's failure is caught, logged without secrets and recorded
under ``notifications["errors"]`` so the next call catches up); let one channel's failure
stop another; create a client before the first notification needs it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.aws.events import STATE_CHANGE, EventPublisher
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import names_of
from chalicelib.notify import (
    Channel,
    Notifier,
    NullNotifier,
    current_sha,
    describe_error,
    redact,
)

if TYPE_CHECKING:
    from chalicelib.aws.clients import ClientFactory
    from chalicelib.aws.secrets import Secrets
    from chalicelib.domain.settings import Settings
    from chalicelib.github.gateway import GitHubGateway
    from chalicelib.notify.github import GitHubDeployments
    from chalicelib.notify.slack import SlackNotifier

LOG = logging.getLogger(__name__)
ERRORS = "errors"


class StateChangeEvents:
    """Puts an "Environment State Change" event on the bus once per status and sha."""

    name = "events"

    def __init__(self, publisher: EventPublisher, url_for: Callable[[Environment], str]) -> None:
        self._publisher = publisher
        self._url_for = url_for

    def sync(self, env: Environment, state: dict[str, Any]) -> None:
        sha = current_sha(env)
        key = f"{env.status.value}:{sha or ''}"
        if state.get("last") == key:
            return
        state["event_id"] = self._publisher.publish(
            STATE_CHANGE, state_change_detail(env, self._url_for(env))
        )
        state["last"] = key


def state_change_detail(env: Environment, url: str) -> dict[str, Any]:
    """The event's detail: what a subscriber needs to act on the change, and no secret."""
    detail: dict[str, Any] = {
        "repository": env.repository,
        "branch": env.branch,
        "slug": env.slug,
        "url": url,
        "status": env.status.value,
        "sha": current_sha(env),
    }
    if env.status == Status.FAILED:
        detail["reason"] = redact(env.reason) if env.reason else None
        # The commit the preview still serves after this one failed (ECS rolled back to
        # it, or the failed build never replaced it); None when nothing else serves.
        serving = env.deployed_sha if env.deployed_sha != env.desired_sha else None
        detail["serving_sha"] = serving
    return detail


class NotificationDispatcher:
    """A Notifier that keeps every configured channel in step with the environment."""

    def __init__(
        self,
        slack: SlackNotifier | None,
        github: GitHubDeployments | None,
        events: StateChangeEvents | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._channels: list[Channel] = [c for c in (slack, github, events) if c is not None]
        self._clock = clock

    def environment_changed(self, env: Environment) -> Environment:
        notes = copy.deepcopy(env.notifications)
        for channel in self._channels:
            state = notes.setdefault(channel.name, {})
            errors = notes.setdefault(ERRORS, {})
            try:
                channel.sync(env, state)
            except Exception as exc:
                errors[channel.name] = {"at": self._clock(), "error": describe_error(exc)}
                LOG.warning(
                    "%s notification for %s/%s not delivered (retried on the next converge): %s",
                    channel.name,
                    env.repository,
                    env.branch,
                    errors[channel.name]["error"],
                )
            else:
                errors.pop(channel.name, None)
            if not errors:
                del notes[ERRORS]
        if notes == env.notifications:
            return env
        return replace(env, notifications=notes)


def notifier_from_settings(
    settings: Settings,
    clients: ClientFactory,
    *,
    channel_for: Callable[[Environment], str | None] | None = None,
    clock: Callable[[], float] = time.time,
    github_write_pause: float | None = None,
    github: GitHubGateway | None = None,
    secrets: Secrets | None = None,
) -> Notifier:
    """The notifier for an installation: each channel only when it is configured.

    Reads ``slack_api_url``, ``slack_channel`` (unless ``channel_for`` is given),
    ``event_bus``, ``app_name``, ``preview_domain`` and ``preview_scheme``; the Slack token
    through ``secrets`` (the runtime's; else a Secrets of its own), and GitHub through the
    ``github`` gateway passed in (the runtime's), else one built here by
    :func:`chalicelib.github.connect.gateway_from_settings` (``github_write_pause`` is
    its pause between writes; the default picks by URL). Secrets are read from Secrets
    Manager (and App installation tokens minted) on the first notification, not here, so
    such a failure is a notification failure, retried later.
    """
    from chalicelib.aws.secrets import Secrets
    from chalicelib.github.connect import gateway_from_settings
    from chalicelib.notify.github import GitHubDeployments
    from chalicelib.notify.slack import SlackNotifier, slack_client

    def url_for(env: Environment) -> str:
        names = names_of(env, settings.app_name, settings.preview_domain)
        return settings.preview_url(names.host)

    if secrets is None:
        secrets = Secrets.over(settings, clients)
    slack = None
    if secrets.slack_token.configured:
        slack_token = secrets.slack_token.current
        default_channel = settings.slack_channel
        slack = SlackNotifier(
            lambda: slack_client(slack_token(), settings.slack_api_url),
            channel_for or (lambda env: default_channel),
            url_for,
        )
    if github is None:
        github = gateway_from_settings(
            settings, clients, secrets=secrets, clock=clock, write_pause=github_write_pause
        )
    deployments = GitHubDeployments(github, url_for) if github is not None else None
    events = None
    if settings.event_bus:
        events = StateChangeEvents(
            EventPublisher(clients.client("events"), settings.event_bus), url_for
        )
    if slack is None and deployments is None and events is None:
        return NullNotifier()
    return NotificationDispatcher(slack, deployments, events, clock)
