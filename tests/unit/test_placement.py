"""A new environment goes to the listener of the pool with most room, counted from the
store's claims (never by listing rules), and stays on its listener for life."""

from __future__ import annotations

import json

from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore
from chalicelib.domain.names import names_for
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.repo_configs import RepoConfigSource
from chalicelib.engine.converge.targets import TargetBuilder
from chalicelib.engine.policy import OperatorPolicy
from chalicelib.engine.repoconfig import RepoDefaults
from tests.unit.test_settings import BASE

POOL = [
    {"listener_arn": f"arn:listener/{n}", "dns_name": f"alb-{n}.example.com", "zone_id": "Z1"}
    for n in (1, 2, 3)
]


def builder(store: InMemoryEnvironmentStore) -> TargetBuilder:
    settings = Settings.from_environ({**BASE, "BRANCHENV_LISTENERS": json.dumps(POOL)})
    return TargetBuilder(
        settings=settings,
        store=store,
        repository_uri=lambda: "123.dkr.ecr.us-east-1.amazonaws.com/previews",
        configs=RepoConfigSource(None, RepoDefaults()),
        operator=OperatorPolicy(),
    )


def placed(targets: TargetBuilder, branch: str, **fields: object) -> str:
    names = names_for("demo", "octo/shop", branch, "preview.example.com")
    env = Environment(slug=names.slug, repository="octo/shop", branch=branch, **fields)  # type: ignore[arg-type]
    return targets.listener_for(env, names).listener_arn


def test_a_new_environment_goes_where_fewest_rules_are_held() -> None:
    store = InMemoryEnvironmentStore()
    for priority in range(5):
        store.claim_priority("arn:listener/1", priority + 1, f"a{priority}")
        store.claim_priority("arn:listener/3", priority + 1, f"c{priority}")
    store.claim_priority("arn:listener/2", 1, "b0")

    assert placed(builder(store), "feature/new") == "arn:listener/2"


def test_new_environments_spread_over_an_empty_pool() -> None:
    store = InMemoryEnvironmentStore()
    targets = builder(store)
    for n in range(30):
        listener = placed(targets, f"feature/{n}")
        store.claim_priority(listener, n + 1, f"env-{n}")

    held = store.occupancy([item["listener_arn"] for item in POOL])
    assert sorted(held.values()) == [10, 10, 10]


def test_an_environment_stays_on_its_listener_however_full() -> None:
    store = InMemoryEnvironmentStore()
    for priority in range(50):
        store.claim_priority("arn:listener/3", priority + 1, f"c{priority}")

    where = placed(builder(store), "feature/old", listener_arn="arn:listener/3", priority=7)
    assert where == "arn:listener/3"
