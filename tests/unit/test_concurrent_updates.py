"""One retry policy for a record write that lost a race (ConcurrentUpdate): tried again at
once, re-reading each time, up to CONCURRENT_UPDATE_ATTEMPTS writes; then an error naming
the record."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.desired import desire_of
from chalicelib.domain.environments import (
    CONCURRENT_UPDATE_ATTEMPTS,
    ConcurrentUpdate,
    Environment,
    InMemoryEnvironmentStore,
    retry_concurrent_updates,
)
from tests.unit.test_desired import NAMES, SHA_B, event, recorded


class RacingStore(InMemoryEnvironmentStore):
    """A store in which another writer gets in first, ``rivals`` times: just before each
    of the next ``rivals`` writes of an existing record, it writes that record itself."""

    def __init__(self) -> None:
        super().__init__()
        self.rivals = 0
        self.rival_writes = 0

    def put(self, env: Environment) -> Environment:
        current = self.get(env.slug)
        if self.rivals and current is not None:
            self.rivals -= 1
            self.rival_writes += 1
            super().put(replace(current, reason=f"noted by another writer {self.rival_writes}"))
        return super().put(env)


def test_an_attempt_that_loses_races_is_tried_again_and_told_how_many_came_before() -> None:
    told: list[int] = []

    def attempt(tried: int) -> str:
        told.append(tried)
        if tried < CONCURRENT_UPDATE_ATTEMPTS - 1:
            raise ConcurrentUpdate("lost")
        return "written"

    assert retry_concurrent_updates(attempt, "slug-1") == "written"
    assert told == list(range(CONCURRENT_UPDATE_ATTEMPTS))


def test_after_the_last_attempt_the_error_names_the_record() -> None:
    told: list[int] = []

    def attempt(tried: int) -> None:
        told.append(tried)
        raise ConcurrentUpdate("lost")

    with pytest.raises(ConcurrentUpdate, match=r"^slug-1: the record kept changing \(8 writes"):
        retry_concurrent_updates(attempt, "slug-1")
    assert len(told) == CONCURRENT_UPDATE_ATTEMPTS == 8


def test_any_other_error_is_not_retried() -> None:
    told: list[int] = []

    def attempt(tried: int) -> None:
        told.append(tried)
        raise ValueError("not a race")

    with pytest.raises(ValueError, match="not a race"):
        retry_concurrent_updates(attempt, "slug-1")
    assert told == [0]


def test_a_push_is_recorded_over_a_record_another_writer_keeps_changing() -> None:
    store = RacingStore()
    store.put(recorded())
    store.rivals = CONCURRENT_UPDATE_ATTEMPTS - 1

    desire = desire_of(store, event(sha=SHA_B, at=200.0), NAMES, clock=lambda: 300.0, defer=False)

    assert desire is not None and desire.written
    stored = store.get(NAMES.slug)
    assert stored is not None and stored.desired_sha == SHA_B
    assert store.rival_writes == CONCURRENT_UPDATE_ATTEMPTS - 1


def test_a_push_gives_up_when_every_attempt_loses_and_names_the_environment() -> None:
    store = RacingStore()
    store.put(recorded())
    store.rivals = CONCURRENT_UPDATE_ATTEMPTS

    with pytest.raises(ConcurrentUpdate, match=f"^{NAMES.slug}: the record kept changing"):
        desire_of(store, event(sha=SHA_B, at=200.0), NAMES, clock=lambda: 300.0, defer=False)
    stored = store.get(NAMES.slug)
    assert stored is not None and stored.desired_sha != SHA_B
