"""A failure at the k-th AWS call of a create, a push and a delete, for every k: after
SQS's redelivery and a reaper sweep the environment is what its branch says, and the
leak audit is empty once the branch is deleted.

The fault kinds (throttling, a 500, a read timeout, a connect timeout) take turns over k;
each action is run with the fault raised before the call reaches AWS and after it took
effect. Every k gets its own branch in one moto world.
"""

from __future__ import annotations

import pytest

from chalicelib.domain.messages import BranchEvent
from tests.integration.faults import KINDS, WITH_EVENTS, FaultInjector
from tests.integration.harness import World, sha_of
from tests.reliability.support import (
    FakeGitHub,
    assert_gone,
    assert_ready_at,
    deliver_until_done,
    deployment_completed,
    reap,
)

FIRST, SECOND = sha_of(1), sha_of(2)


def push_and_complete(world: World, github: FakeGitHub, branch: str, sha: str) -> None:
    deliver_until_done(world, world.push(branch, sha))
    github.set_head(branch, sha)
    deployment_completed(world, branch)


def prepare(world: World, github: FakeGitHub, action: str, branch: str) -> BranchEvent:
    """Bring ``branch`` to where ``action`` starts; return the event ``action`` delivers."""
    if action == "create":
        github.set_head(branch, FIRST)
        return world.create(branch)
    deliver_until_done(world, world.create(branch))
    push_and_complete(world, github, branch, FIRST)
    assert_ready_at(world, branch, FIRST)
    if action == "push":
        github.set_head(branch, SECOND)
        return world.push(branch, SECOND)
    github.remove(branch)
    return world.delete(branch)


def finish(world: World, github: FakeGitHub, action: str, branch: str) -> None:
    """The rest of the lifecycle after ``action``, with the checks a user would make."""
    if action == "create":
        push_and_complete(world, github, branch, FIRST)
        assert_ready_at(world, branch, FIRST)
    if action == "push":
        deployment_completed(world, branch)
        assert_ready_at(world, branch, SECOND)
    if action != "delete":
        github.remove(branch)
        deliver_until_done(world, world.delete(branch))
    assert_gone(world, branch)


def calls_made_by(
    world: World, github: FakeGitHub, faults: FaultInjector, action: str, branch: str
) -> int:
    event = prepare(world, github, action, branch)
    faults.reset()
    world.deliver(event)
    count = len(faults.calls)
    finish(world, github, action, branch)
    return count


@pytest.fixture
def world_with_images(world: World) -> World:
    world.push_image(FIRST)
    world.push_image(SECOND)
    return world


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("action", ["create", "push", "delete"])
def test_a_fault_at_every_call_converges_and_leaks_nothing(
    world_with_images: World, github: FakeGitHub, action: str, when: str
) -> None:
    world = world_with_images
    faults = FaultInjector(world.clients, services=WITH_EVENTS)
    calls_made_by(world, github, faults, action, "warm-up")  # caches are warm from here on
    total = calls_made_by(world, github, faults, action, "probe")
    assert total >= 5, total

    for k in range(1, total + 1):
        branch = f"{action}-{when}-{k}"
        kind = KINDS[(k + len(when)) % len(KINDS)]
        event = prepare(world, github, action, branch)
        faults.reset(fail_at=k, kind=kind, when=when)
        failures = deliver_until_done(world, event)
        faults.reset()
        assert faults.failed, f"call {k} was never made"
        reap_report = reap(world, github)

        assert reap_report.errors == [], (k, kind, reap_report.errors)
        # A notification that fails is retried by the next converge, never by SQS.
        expected = 0 if faults.failed == ["PutEvents"] else 1
        assert len(failures) == expected, (k, kind, faults.failed, failures)
        finish(world, github, action, branch)
        faults.failed.clear()
    assert world.leftovers() == []
