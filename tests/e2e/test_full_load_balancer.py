"""A full load balancer through the local stack (issue 12): ELB takes at most 100 rules
and 100 target groups per Application Load Balancer ("Quotas for your Application Load
Balancers"). The preview that does not fit fails within seconds with a reason naming the
limit, leaves nothing in AWS, and deploys on its next push once a slot is free.

The stack's strict layer holds the quota; this module lowers it to two rules so the test
needs three previews, not 101 (bench/full_load_balancer.py plays the real 100).
"""

from __future__ import annotations

import time
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
