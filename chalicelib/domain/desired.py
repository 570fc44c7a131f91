"""Records what a branch should be: present at a sha, or absent. Stale events never win.

The worker calls :func:`desire_of` for every BranchEvent before converging. Ordering is
GitHub's ``repository.pushed_at``: an event older than the one recorded is ignored, and on
a tie an absent branch stays absent, so a late push never resurrects a deleted branch.
Where GitHub can be asked (a token is configured), its answer about the branch is the
truth and the webhook is only the trigger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from chalicelib.domain.environments import (
    Desired,
    Environment,
    EnvironmentStore,
    Status,
    retry_concurrent_updates,
)
from chalicelib.domain.messages import BranchEvent
from chalicelib.domain.names import EnvironmentNames

log = logging.getLogger(__name__)


class BranchTruth(Protocol):
    """Who knows whether a branch exists and where its head is (GitHub)."""

    def branch_head(self, repository: str, branch: str) -> str | None: ...


class TruthUnavailable(Exception):
    """GitHub could not be asked; the webhook's word is used instead."""


@dataclass(frozen=True)
class GitHubAnswer:
    """What GitHub said about the branch: its head sha, or None when it is gone."""

    head: str | None


@dataclass(frozen=True)
class Decision:
    """What an event means for the record: the new desired state, or why it is ignored."""

    desired: Desired
    sha: str | None
    ignored: str | None = None


def decide(env: Environment | None, event: BranchEvent, github: GitHubAnswer | None) -> Decision:
    """Pure: the desired state after ``event``, given GitHub's answer (None if not asked)."""
    if env is not None:
        if event.ordering < env.ordering:
            return Decision(env.desired, env.desired_sha, "older than the event already recorded")
        if (
            event.ordering == env.ordering
            and env.desired == "absent"
            and event.desired == "present"
            and github is None
        ):
            return Decision("absent", None, "the branch was deleted at the same time or later")
    if github is not None:
        if github.head is None:
            return Decision("absent", None)
        return Decision("present", github.head)
    if event.desired == "absent":
        return Decision("absent", None)
    sha = event.sha or (env.desired_sha if env is not None and env.desired == "present" else None)
    return Decision("present", sha)


@dataclass(frozen=True)
class Desire:
    """The record to converge after an event, and whether it is written yet."""

    env: Environment
    written: bool


def desire_of(
    store: EnvironmentStore,
    event: BranchEvent,
    names: EnvironmentNames,
    *,
    clock: Callable[[], float],
    truth: BranchTruth | None = None,
    history_days: int = 14,
    defer: bool,
) -> Desire | None:
    """The desired state ``event`` asks for, recorded; None when the event changes nothing
    that needs converging. With ``defer``, for a record converge knows (``known``), the
    new desired state is returned unwritten (its ``version`` still the stored one):
    the caller converges at once and converge's own first write carries it, one write
    less per event. The work queue hands one environment's messages over one at a time
    (an SQS FIFO message group), and a converge that stops before writing leaves the
    message to be delivered again."""
    head = _ask_truth(truth, event)

    def attempt(_: int) -> Desire | None:
        env = store.get(names.slug)
        if env is not None and env.repository != event.repository:
            log.warning(
                "%s: slug %s belongs to %s; ignoring %s",
                event.repository,
                names.slug,
                env.repository,
                event.event,
            )
            return None
        decision = decide(env, event, head)
        if decision.ignored:
            log.info(
                "%s@%s: %s ignored: %s",
                event.repository,
                event.branch,
                event.event,
                decision.ignored,
            )
            return None
        updated = _updated(env, event, names, decision, clock(), history_days)
        if updated is None:
            return None
        if env is not None and _same_desire(env, updated):
            # A redelivery, or a retry after a converge that stopped half-way: nothing to
            # record, but converge again so the work gets finished.
            return Desire(env, written=True)
        if defer and env is not None and env.known:
            return Desire(updated, written=False)
        return Desire(store.put(updated), written=True)

    return retry_concurrent_updates(attempt, names.slug)


def _ask_truth(truth: BranchTruth | None, event: BranchEvent) -> GitHubAnswer | None:
    if truth is None:
        return None
    try:
        return GitHubAnswer(truth.branch_head(event.repository, event.branch))
    except Exception as exc:
        log.warning(
            "could not ask GitHub about %s@%s (%s); using the webhook's word",
            event.repository,
            event.branch,
            type(exc).__name__,
        )
        return None


def _same_desire(before: Environment, after: Environment) -> bool:
    keys = ("desired", "desired_sha", "ordering", "status")
    return all(getattr(before, key) == getattr(after, key) for key in keys)


def _updated(
    env: Environment | None,
    event: BranchEvent,
    names: EnvironmentNames,
    decision: Decision,
    now: float,
    history_days: int,
) -> Environment | None:
    ordering = max(event.ordering, env.ordering if env else 0.0)
    if env is None:
        if decision.desired == "absent":
            # A tombstone, so a create or push that arrives after the delete is stale.
            return Environment(
                slug=names.slug,
                repository=event.repository,
                branch=event.branch,
                desired="absent",
                ordering=ordering,
                status=Status.DELETED,
                created_at=now,
                updated_at=now,
                expires_at=int(now + history_days * 86400),
            )
        return Environment(
            slug=names.slug,
            repository=event.repository,
            branch=event.branch,
            desired="present",
            desired_sha=decision.sha,
            ordering=ordering,
            status=Status.PENDING,
            pusher=event.pusher,
            commit_url=event.commit_url,
            created_at=now,
            updated_at=now,
            triggered_at=now if decision.sha else None,
            # A new record knows what converge made for it: nothing yet. Whatever a lost
            # record's environment left behind is met by the first write (a CREATE that
            # finds a record, a name taken), which makes the next run observe everything.
            known=True,
        )
    if decision.desired == "absent":
        if env.desired == "absent":
            return None if env.status == Status.DELETED else replace(env, ordering=ordering)
        return replace(env, desired="absent", ordering=ordering, reason=None, updated_at=now)
    new_sha = decision.sha != env.desired_sha
    restarted = env.desired == "absent" or new_sha
    return replace(
        env,
        desired="present",
        desired_sha=decision.sha,
        ordering=ordering,
        pusher=event.pusher or env.pusher,
        commit_url=event.commit_url or env.commit_url,
        status=Status.PENDING if restarted else env.status,
        reason=None if restarted else env.reason,
        log_url=None if restarted else env.log_url,
        triggered_at=now if new_sha and decision.sha else env.triggered_at,
        asleep=False,  # a push wakes a sleeping branch (and deploys it)
        expires_at=None,
        created_at=now if env.status == Status.DELETED else env.created_at,
        updated_at=now,
    )


def desire_sleep(
    store: EnvironmentStore,
    slug: str,
    *,
    asleep: bool,
    when: Callable[[Environment], bool],
) -> Environment | None:
    """Record that ``slug`` is to sleep (the reaper found it idle) or to be awake (a request
    reached the waker, the dashboard's wake), if ``when`` holds for the record as it is now
    (re-checked after a lost race); the record as it then is, or None (no record, or
    ``when`` does not hold). Converge does the rest."""

    def attempt(_: int) -> Environment | None:
        env = store.get(slug)
        if env is None or not when(env):
            return None
        if env.asleep == asleep:
            return env
        return store.put(replace(env, asleep=asleep))

    return retry_concurrent_updates(attempt, slug)
