"""Outbound notifications: what people and other tools are told about an environment.

Converge calls :meth:`Notifier.environment_changed` after every persisted status change;
the notifier tells Slack, GitHub and the EventBridge bus, and returns the environment with
its ``notifications`` record updated (what was delivered where), which converge persists.

This package must never break or delay a deploy: a notifier never raises, never blocks
for long, and records failures so the next call catches up. It must never put a secret,
token or environment variable value in a message or a log line. Importing it must not
import slack_sdk or PyGithub: they load only when a notification is first sent.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.redaction import redact as redact

MAX_ERROR_CHARS = 300


class Notifier(Protocol):
    """Tells people and tools about an environment; see the module docstring."""

    def environment_changed(self, env: Environment) -> Environment:
        """Deliver what changed; return ``env`` with an updated ``notifications`` dict.
        Never raises."""
        ...


class NullNotifier:
    """A notifier that tells nobody (no channel configured, dry runs, unit tests)."""

    def environment_changed(self, env: Environment) -> Environment:
        return env


class Channel(Protocol):
    """One destination of notifications (Slack, GitHub, the event bus).

    ``sync`` brings the destination up to date with ``env`` and records what it
    delivered in ``state`` (its own part of ``Environment.notifications``), mutating it
    in place as it goes, so progress made before a failure is kept. It may raise.
    """

    name: str

    def sync(self, env: Environment, state: dict[str, Any]) -> None: ...


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of ``exc`` for logs and the notifications record."""
    message = redact(str(exc)).replace("\n", " ").strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:MAX_ERROR_CHARS]


def current_sha(env: Environment) -> str | None:
    """The commit the environment's status is about: the deployed one once ready (and
    while it sleeps: that commit answers again when it wakes), the wanted one while
    building or after a failure."""
    if env.status in (Status.READY, Status.SLEEPING) and env.deployed_sha:
        return env.deployed_sha
    return env.desired_sha or env.deployed_sha


STATUS_LABELS = {
    Status.PENDING: "Pending",
    Status.BUILDING: "Building",
    Status.DEPLOYING: "Deploying",
    Status.READY: "Ready",
    Status.SLEEPING: "Sleeping",
    Status.FAILED: "Failed",
    Status.DELETING: "Deleting",
    Status.DELETED: "Deleted",
}
