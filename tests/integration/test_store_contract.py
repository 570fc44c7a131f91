"""One contract, two stores: DynamoDB (moto) and in memory behave the same."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.domain.environments import (
    ConcurrentUpdate,
    Environment,
    EnvironmentStore,
    InMemoryEnvironmentStore,
    Status,
)
from chalicelib.tools.infra import BaseInfrastructure

ENV = Environment(
    slug="feature-cart",
    repository="octo/shop",
    branch="feature/cart",
    desired_sha="a" * 40,
    ready_seconds=(12.5,),
    notifications={"slack": {"ts": "1"}},
)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> EnvironmentStore:
    if request.param == "memory":
        return InMemoryEnvironmentStore()
    infra: BaseInfrastructure = request.getfixturevalue("infra")
    clients: ClientFactory = request.getfixturevalue("clients")
    return DynamoEnvironmentStore(clients.client("dynamodb"), infra.table_name)


def test_a_written_record_reads_back_equal_with_its_new_version(store: EnvironmentStore) -> None:
    written = store.put(ENV)

    assert written.version == 1
    assert store.get(ENV.slug) == written
    assert store.get("never-seen") is None


def test_a_write_from_a_stale_read_is_refused(store: EnvironmentStore) -> None:
    first = store.put(ENV)
    store.put(replace(first, status=Status.READY))

    with pytest.raises(ConcurrentUpdate):
        store.put(replace(first, status=Status.FAILED))
    with pytest.raises(ConcurrentUpdate):
        store.put(ENV)  # version 0: "create", but it exists
    got = store.get(ENV.slug)
    assert got is not None and got.status == Status.READY


def test_scan_returns_every_record_and_live_leaves_out_deleted(store: EnvironmentStore) -> None:
    for n in range(30):
        status = Status.DELETED if n % 3 == 0 else Status.READY
        store.put(replace(ENV, slug=f"b-{n:02d}", status=status))

    assert len(list(store.scan())) == 30
    assert [e.slug for e in store.live()] == [f"b-{n:02d}" for n in range(30) if n % 3]


def test_a_priority_is_held_by_one_environment_until_it_lets_go(store: EnvironmentStore) -> None:
    assert store.claim_priority("arn:l", 7, "a")
    assert store.claim_priority("arn:l", 7, "a")  # again: still its own
    assert not store.claim_priority("arn:l", 7, "b")
    assert store.claim_priority("arn:other", 7, "b")  # priorities are per listener

    store.release_priority("arn:l", 7, "b")  # not b's to release
    assert not store.claim_priority("arn:l", 7, "b")
    store.release_priority("arn:l", 7, "a")
    store.release_priority("arn:l", 7, "a")  # already gone is fine
    assert store.claim_priority("arn:l", 7, "b")
    assert sorted(store.priority_claims()) == [("arn:l", 7, "b"), ("arn:other", 7, "b")]


def test_occupancy_counts_each_listeners_claims_once(store: EnvironmentStore) -> None:
    assert store.claim_priority("arn:l", 1, "a")
    assert store.claim_priority("arn:l", 1, "a")  # its own again: not counted twice
    assert store.claim_priority("arn:l", 2, "b")
    assert not store.claim_priority("arn:l", 2, "c")  # refused: not counted
    assert store.claim_priority("arn:other", 1, "c")
    store.release_priority("arn:l", 2, "c")  # not c's: nothing released, nothing counted
    store.release_priority("arn:l", 1, "a")
    store.release_priority("arn:l", 1, "a")  # already gone

    assert store.occupancy(["arn:l", "arn:other", "arn:none"]) == {
        "arn:l": 1,
        "arn:other": 1,
        "arn:none": 0,
    }


def test_a_snapshot_holds_every_record_and_claim(store: EnvironmentStore) -> None:
    store.put(Environment(slug="a", repository="o/r", branch="a", desired="present"))
    assert store.claim_priority("arn:l", 3, "a")

    snapshot = store.snapshot()

    assert [env.slug for env in snapshot.environments] == ["a"]
    assert snapshot.claims == (("arn:l", 3, "a"),)


def test_a_claim_and_the_record_naming_it_are_written_as_one(store: EnvironmentStore) -> None:
    first = store.put(ENV)
    assert store.claim_priority("arn:l", 7, "someone-else")

    assert store.put_claiming(replace(first, priority=7), "arn:l", 7) is None
    assert store.get(ENV.slug) == first  # refused: nothing written

    written = store.put_claiming(replace(first, listener_arn="arn:l", priority=8), "arn:l", 8)
    assert written is not None and written.version == 2
    assert store.get(ENV.slug) == written
    with pytest.raises(ConcurrentUpdate):
        store.put_claiming(replace(first, priority=9), "arn:l", 9)  # from a stale read
    assert ("arn:l", 9, ENV.slug) not in set(store.priority_claims())  # nothing claimed
    again = store.put_claiming(written, "arn:l", 8)  # its own claim, from a retried run
    assert again is not None and again.version == 3
    assert store.occupancy(["arn:l"]) == {"arn:l": 2}


def test_claims_are_released_with_the_record_that_no_longer_names_them(
    store: EnvironmentStore,
) -> None:
    first = store.put(replace(ENV, listener_arn="arn:l", priority=1))
    assert store.claim_priority("arn:l", 1, ENV.slug)
    assert store.claim_priority("arn:l", 2, ENV.slug)
    assert store.claim_priority("arn:l", 3, "someone-else")

    with pytest.raises(ConcurrentUpdate):
        store.put_releasing(replace(ENV, priority=None), [("arn:l", 1)])  # stale: version 0
    assert ("arn:l", 1, ENV.slug) in set(store.priority_claims())

    released = store.put_releasing(replace(first, priority=None), [("arn:l", 1), ("arn:l", 2)])
    assert store.get(ENV.slug) == released and released.priority is None
    assert sorted(store.priority_claims()) == [("arn:l", 3, "someone-else")]
    store.put_releasing(released, [("arn:l", 3), ("arn:l", 1)])  # not its own / gone already
    assert sorted(store.priority_claims()) == [("arn:l", 3, "someone-else")]
    assert store.occupancy(["arn:l"]) == {"arn:l": 1}
