"""Pure views of an environment record: its preview URL, its JSON form, readable times.

Shared by the JSON API and the HTML page. Only http(s) links ever leave this module
(:func:`safe_link`): a record's commit and log URLs are never trusted as they are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import names_of
from chalicelib.domain.settings import Settings

_SAFE_LINK = re.compile(r"^https?://", re.IGNORECASE)


def preview_url(env: Environment, settings: Settings) -> str:
    """The URL QA opens for ``env`` (the same host the routing rule and DNS record use)."""
    names = names_of(env, settings.app_name, settings.preview_domain)
    return settings.preview_url(names.host)


def iso_time(timestamp: float | None) -> str | None:
    """ISO-8601 in UTC, or None for a time that was never set (0 or None)."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def human_duration(seconds: float) -> str:
    """A short, rounded-down duration people read at a glance: 45s, 12m, 3h 5m, 2d 4h."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def environment_json(env: Environment, settings: Settings) -> dict[str, Any]:
    """The public view of one record: what QA and scripts need, no internal ARNs."""
    reason = env.reason
    if env.status is Status.FAILED and not reason:
        reason = "no reason was recorded; see the deploy logs"
    return {
        "repository": env.repository,
        "branch": env.branch,
        "slug": env.slug,
        "url": preview_url(env, settings),
        "status": env.status.value,
        "reason": reason,
        "sha": env.desired_sha or env.deployed_sha,
        "deployed_sha": env.deployed_sha,
        "commit_url": safe_link(env.commit_url),
        "log_url": safe_link(env.log_url),
        "pusher": env.pusher,
        "created_at": iso_time(env.created_at),
        "updated_at": iso_time(env.updated_at),
        "ready_at": iso_time(env.ready_at),
    }


def safe_link(href: str | None) -> str | None:
    """``href`` if it is an http(s) URL; never a javascript: or data: link."""
    return href if href and _SAFE_LINK.match(href) else None
