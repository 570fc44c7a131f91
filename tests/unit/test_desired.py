"""Recording the desired state: stale events never win; GitHub's answer is the truth."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.desired import GitHubAnswer, decide, desire_of
from chalicelib.domain.environments import (
    Environment,
    EnvironmentStore,
    InMemoryEnvironmentStore,
    Status,
)
from chalicelib.domain.messages import BranchEvent
from chalicelib.domain.names import EnvironmentNames, names_for

REPO = "octo/shop"
BRANCH = "feature/cart"
NAMES = names_for("shop", REPO, BRANCH, "preview.example.com")
SHA_A, SHA_B = "a" * 40, "b" * 40


def apply_event(
    store: EnvironmentStore, branch_event: BranchEvent, names: EnvironmentNames, **options: Any
) -> Environment | None:
    """The record to converge after ``branch_event``, written at once (``defer=False``)."""
    desire = desire_of(store, branch_event, names, defer=False, **options)
    return desire.env if desire is not None else None


def event(
    desired: str = "present", sha: str | None = SHA_A, at: float = 100.0, kind: str = "push"
) -> BranchEvent:
    return BranchEvent(
        repository=REPO,
        branch=BRANCH,
        desired=desired,  # type: ignore[arg-type]
        sha=sha,
        ordering=at,
        delivery_id=f"d-{at}",
        event=kind,
    )


def recorded(**changes: object) -> Environment:
    env = Environment(
        slug=NAMES.slug,
        repository=REPO,
        branch=BRANCH,
        desired_sha=SHA_A,
        ordering=100.0,
        status=Status.READY,
    )
    return replace(env, **changes)  # type: ignore[arg-type]


class FakeGitHub:
    def __init__(self, head: str | None = None, down: bool = False) -> None:
        self.head, self.down = head, down

    def branch_head(self, repository: str, branch: str) -> str | None:
        if self.down:
            raise ConnectionError("GitHub is down")
        return self.head


def test_an_older_push_is_ignored() -> None:
    decision = decide(recorded(ordering=200.0), event(sha=SHA_B, at=150.0), None)
    assert decision.ignored and decision.sha == SHA_A


def test_a_push_at_the_same_time_as_a_delete_does_not_resurrect_the_branch() -> None:
    decision = decide(recorded(desired="absent", desired_sha=None), event(at=100.0), None)
    assert decision.ignored


def test_a_later_push_recreates_a_deleted_branch() -> None:
    decision = decide(recorded(desired="absent"), event(sha=SHA_B, at=300.0), None)
    assert (decision.desired, decision.sha, decision.ignored) == ("present", SHA_B, None)


def test_a_create_event_keeps_the_known_sha() -> None:
    decision = decide(recorded(), event(sha=None, kind="create", at=300.0), None)
    assert (decision.desired, decision.sha) == ("present", SHA_A)


@pytest.mark.parametrize(
    ("head", "desired", "sha"), [(SHA_B, "present", SHA_B), (None, "absent", None)]
)
def test_githubs_answer_beats_the_webhook(head: str | None, desired: str, sha: str | None) -> None:
    decision = decide(recorded(), event(sha=SHA_A, at=300.0), GitHubAnswer(head))
    assert (decision.desired, decision.sha) == (desired, sha)


def test_a_delete_before_any_create_leaves_a_tombstone_the_create_cannot_beat() -> None:
    store = InMemoryEnvironmentStore()
    apply_event(store, event("absent", None, at=200.0, kind="delete"), NAMES, clock=lambda: 1.0)
    late_create = apply_event(
        store, event(sha=None, at=150.0, kind="create"), NAMES, clock=lambda: 2.0
    )

    assert late_create is None
    env = store.get(NAMES.slug)
    assert env is not None and env.desired == "absent" and env.status == Status.DELETED


def test_a_new_sha_restarts_a_failed_environment() -> None:
    store = InMemoryEnvironmentStore()
    store.put(recorded(status=Status.FAILED, reason="build failed"))

    env = apply_event(store, event(sha=SHA_B, at=300.0), NAMES, clock=lambda: 5.0)

    assert env is not None
    assert (env.status, env.reason, env.desired_sha, env.triggered_at) == (
        Status.PENDING,
        None,
        SHA_B,
        5.0,
    )


def test_a_redelivery_writes_nothing_but_still_returns_the_record_to_converge() -> None:
    store = InMemoryEnvironmentStore()
    written = store.put(recorded())

    env = apply_event(store, event(at=100.0), NAMES, clock=lambda: 9.0)

    assert env is not None and env.version == written.version


def test_github_down_falls_back_to_the_webhooks_word() -> None:
    store = InMemoryEnvironmentStore()

    env = apply_event(
        store, event(sha=SHA_B), NAMES, clock=lambda: 1.0, truth=FakeGitHub(down=True)
    )

    assert env is not None and env.desired_sha == SHA_B


def test_github_says_the_branch_is_gone() -> None:
    store = InMemoryEnvironmentStore()
    store.put(recorded())

    env = apply_event(
        store, event(sha=SHA_B, at=300.0), NAMES, clock=lambda: 1.0, truth=FakeGitHub(head=None)
    )

    assert env is not None and env.desired == "absent"


def test_an_event_of_another_repository_for_a_taken_slug_is_ignored() -> None:
    store = InMemoryEnvironmentStore()
    store.put(recorded(repository="someone/else"))

    assert apply_event(store, event(at=300.0), NAMES, clock=lambda: 1.0) is None


def test_a_push_to_a_known_record_is_handed_to_converge_unwritten() -> None:
    store = InMemoryEnvironmentStore()
    stored = store.put(recorded(known=True))

    desire = desire_of(store, event(sha=SHA_B, at=300.0), NAMES, clock=lambda: 5.0, defer=True)

    assert desire is not None and not desire.written
    assert desire.env.desired_sha == SHA_B and desire.env.status == Status.PENDING
    assert desire.env.version == stored.version  # converge's first write carries it
    assert store.get(NAMES.slug) == stored


def test_a_record_converge_does_not_know_is_written_before_converging() -> None:
    store = InMemoryEnvironmentStore()
    store.put(recorded(known=False))

    desire = desire_of(store, event(sha=SHA_B, at=300.0), NAMES, clock=lambda: 5.0, defer=True)
    new = desire_of(
        store,
        replace(event(at=1.0), branch="fresh"),
        names_for("shop", REPO, "fresh", "p.io"),
        clock=lambda: 5.0,
        defer=True,
    )

    assert desire is not None and desire.written
    assert store.get(NAMES.slug) == desire.env
    assert new is not None and new.written  # a new record is written: nothing known yet
