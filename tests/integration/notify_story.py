"""Drives a notifier through a series of environment states, the way converge does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from chalicelib.domain.environments import Environment
from chalicelib.notify.dispatcher import NotificationDispatcher


def drive(notifier: NotificationDispatcher, envs: Iterable[Environment]) -> Environment:
    """Feed each state to the notifier, carrying its notifications along like converge."""
    notes: dict[str, Any] = {}
    result = None
    for env in envs:
        result = notifier.environment_changed(replace(env, notifications=notes))
        notes = result.notifications
    assert result is not None
    return result
