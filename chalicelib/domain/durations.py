"""Durations as people write them in branchenv.yml and in settings: ``90m``, ``12h``, ``3d``,
``2w``, or a bare number of hours. One parser for ``ttl``, ``sleep_after`` and
``BRANCHENV_SLEEP_AFTER``, so the file and the setting accept the same text."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhdw])$")
_DURATION_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
NEVER = "never"


def parse_duration_hours(text: str) -> float | None:
    """``12h``, ``3d``, ``2w``, ``90m`` or a bare number of hours; None if not one."""
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text.strip().lower())
    return float(match.group(1)) * _DURATION_HOURS[match.group(2)] if match else None


def parse_sleep_after_minutes(text: str) -> float | None:
    """``sleep_after``: a duration of at least a minute, up to a year, in minutes, or
    ``never`` (0: the preview never sleeps); None if the text is neither."""
    if text.strip().lower() == NEVER:
        return 0.0
    hours = parse_duration_hours(text)
    if hours is None:
        return None
    minutes = hours * 60
    return minutes if 1 <= minutes <= 365 * 24 * 60 else None
