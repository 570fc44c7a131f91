"""Full load balancers through the local stack (issues 12 and 15): ELB takes at most 100
rules and 100 target groups per Application Load Balancer ("Quotas for your Application
Load Balancers"). The preview that does not fit fails within seconds with a reason naming
the limit, leaves nothing in AWS, and deploys on its next push once a slot is free. With a
pool of two load balancers, new previews spread over both, each DNS alias points at the
load balancer holding its rule, a push keeps an environment where it is, and the preview
that fits on neither fails fast the same way.

The stack's strict layer holds the quota; this module lowers it to two rules so the tests
need three (or five) previews, not 101 (bench/full_load_balancer.py plays the real 100).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import (
    delete,
    push,
    slug_of,
    stack_options,
    wait_for_environment,
)
from tests.e2e.pool import alias_targets, balancer_names, bare, rule_balancers

pytestmark = pytest.mark.e2e
SETTLED = ("ready", "failed")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(stack_options(app_name="full", load_balancers=1)) as running:
        assert running.strict is not None
        running.strict.rules_per_load_balancer = 2
        yield running


def settle(stack: LocalStack, branch: str, sha: str) -> dict[str, object]:
    push(stack, branch, sha)
    return wait_for_environment(
        stack, slug_of(stack, branch), lambda r: r.get("status") in SETTLED and r.get("sha") == sha
    )


def test_the_preview_that_does_not_fit_fails_fast_and_deploys_once_a_slot_is_free(
    stack: LocalStack,
) -> None:
    for branch in ("full/one", "full/two"):
        record = settle(stack, branch, fake_sha(branch))
        assert record["status"] == "ready", record.get("reason")

    started = time.monotonic()
    record = settle(stack, "full/three", fake_sha("three-1"))
    took = time.monotonic() - started

    assert record["status"] == "failed"
    assert "TooManyRules" in str(record["reason"]) and "full" in str(record["reason"])
    assert took < 60  # fast: no retry into the dead-letter queue
    slug = slug_of(stack, "full/three")
    assert stack.runtime.inventory.managed(slug) == []

    delete(stack, "full/one")
    gone = wait_for_environment(
        stack, slug_of(stack, "full/one"), lambda r: r.get("status") == "deleted"
    )
    assert gone["status"] == "deleted"

    record = settle(stack, "full/three", fake_sha("three-2"))
    assert record["status"] == "ready", record.get("reason")


# --- a pool of two load balancers (issue 15) ------------------------------------------------
# Each takes two previews here (the strict layer's quota lowered from AWS's 100), so four
# fill the pool; bench/full_load_balancer.py --load-balancers 2 --previews 150 plays AWS's.
# Branches are pushed one after the other: each placement sees the previous one's claim.
POOL_BRANCHES = ("pool/one", "pool/two", "pool/three", "pool/four")


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalStack]:
    with LocalStack(stack_options(app_name="pool", load_balancers=2)) as running:
        assert running.strict is not None
        running.strict.rules_per_load_balancer = 2
        yield running


@pytest.fixture(scope="module")
def filled(pool: LocalStack) -> dict[str, dict[str, object]]:
    """The four previews that fill the pool, each settled: branch → its record."""
    return {branch: settle(pool, branch, fake_sha(branch)) for branch in POOL_BRANCHES}


def host_of(stack: LocalStack, branch: str) -> str:
    return bare(f"{slug_of(stack, branch)}.{stack.runtime.settings.preview_domain}")


def listener_of(stack: LocalStack, branch: str) -> str:
    env = stack.runtime.store.get(slug_of(stack, branch))
    assert env is not None and env.listener_arn is not None
    return str(env.listener_arn)


def test_new_previews_spread_over_both_load_balancers_each_alias_at_its_own(
    pool: LocalStack, filled: dict[str, dict[str, object]]
) -> None:
    assert {b: r["status"] for b, r in filled.items()} == dict.fromkeys(POOL_BRANCHES, "ready")
    first, second = balancer_names(pool)
    rules, aliases = rule_balancers(pool), alias_targets(pool)
    hosts = [host_of(pool, branch) for branch in POOL_BRANCHES]

    assert sorted(rules) == sorted(hosts)
    assert Counter(rules.values()) == {first: 2, second: 2}
    assert {host: aliases.get(host) for host in hosts} == {host: rules[host] for host in hosts}
    # The stored record names the listener whose load balancer holds the rule.
    arns = [listener.listener_arn for listener in pool.runtime.settings.listeners]
    by_listener = dict(zip(arns, (first, second), strict=True))
    for branch in POOL_BRANCHES:
        assert by_listener[listener_of(pool, branch)] == rules[host_of(pool, branch)]


def test_a_push_keeps_the_environment_on_its_own_load_balancer(
    pool: LocalStack, filled: dict[str, dict[str, object]]
) -> None:
    branch = POOL_BRANCHES[0]
    host, before, listener = host_of(pool, branch), rule_balancers(pool), listener_of(pool, branch)

    record = settle(pool, branch, fake_sha("pool-one-2"))

    assert record["status"] == "ready", record.get("reason")
    assert listener_of(pool, branch) == listener
    assert rule_balancers(pool)[host] == before[host]
    assert alias_targets(pool)[host] == before[host]


def test_when_both_are_full_the_next_fails_fast_naming_the_limit_and_what_to_raise(
    pool: LocalStack, filled: dict[str, dict[str, object]]
) -> None:
    started = time.monotonic()
    record = settle(pool, "pool/five", fake_sha("pool-five"))
    took = time.monotonic() - started

    assert record["status"] == "failed"
    reason = str(record["reason"])
    assert "all 2 load balancer(s)" in reason and "full" in reason
    assert "TooManyRules" in reason and "100 rules" in reason  # the limit
    assert "load_balancer_count" in reason and "BRANCHENV_LISTENERS" in reason  # what to raise
    assert took < 30  # fast: no retry into the dead-letter queue
    assert pool.runtime.inventory.managed(slug_of(pool, "pool/five")) == []
    assert len(rule_balancers(pool)) == len(POOL_BRANCHES)
