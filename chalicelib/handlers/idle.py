"""Which ready previews have been idle long enough to sleep (the reaper's sweep asks).

A preview sleeps after ``sleep_after`` (branchenv.yml, as converge recorded it, else the
setting ``BRANCHENV_SLEEP_AFTER``; ``never`` opts out) with no request and no deploy. Only a
ready, awake environment on a load balancer with a waker is a candidate, and only once its
last deploy is older than its window, so a sweep asks CloudWatch about the few that could
sleep, all of them in one ``GetMetricData`` call per window length (chalicelib/aws/
cloudwatch.py), never one call per environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chalicelib.aws.cloudwatch import TrafficQuery
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Settings


class RequestCounts(Protocol):
    """CloudWatch's RequestCount per target group (chalicelib/aws/cloudwatch.py Metrics)."""

    def request_counts(
        self, queries: Sequence[TrafficQuery], *, now: float
    ) -> dict[str, float]: ...


@dataclass(frozen=True)
class Sleeper:
    """An environment to put to sleep, and why."""

    slug: str
    reason: str


def sleep_after_minutes(env: Environment, settings: Settings) -> float:
    """The environment's window in minutes (0: it never sleeps)."""
    if env.sleep_after_minutes is not None:
        return env.sleep_after_minutes
    return settings.sleep_after_minutes


def can_sleep(env: Environment, settings: Settings) -> bool:
    """A ready, awake preview whose load balancer has a waker, and a window."""
    wakers = {item.listener_arn: item.waker_target_group_arn for item in settings.listeners}
    return (
        env.desired == "present"
        and env.status == Status.READY
        and not env.asleep
        and env.target_group_arn is not None
        and env.listener_arn is not None
        and wakers.get(env.listener_arn) is not None
        and sleep_after_minutes(env, settings) > 0
    )


def idle_environments(
    envs: Iterable[Environment], settings: Settings, metrics: RequestCounts, *, now: float
) -> list[Sleeper]:
    """The environments with no request and no deploy for longer than their window."""
    candidates: list[tuple[Environment, int]] = []
    for env in envs:
        if not can_sleep(env, settings):
            continue
        seconds = int(sleep_after_minutes(env, settings) * 60)
        last_deploy = max(env.ready_at or 0.0, env.triggered_at or 0.0, env.created_at)
        if now - last_deploy > seconds:
            candidates.append((env, seconds))
    if not candidates:
        return []
    queries = [
        TrafficQuery(env.listener_arn or "", env.target_group_arn or "", seconds)
        for env, seconds in candidates
    ]
    counts = metrics.request_counts(queries, now=now)
    return [
        Sleeper(env.slug, f"no request for {_minutes(seconds)}")
        for env, seconds in candidates
        if counts.get(env.target_group_arn or "", 0.0) == 0
    ]


def _minutes(seconds: int) -> str:
    minutes = seconds / 60
    if minutes >= 120:
        return f"{minutes / 60:.0f} hours"
    return f"{minutes:.0f} minutes"
