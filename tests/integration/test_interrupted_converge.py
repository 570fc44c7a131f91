"""An injected failure after each AWS call in turn: the next run finishes the job and
nothing is leaked (DESIGN.md: converge is safe to interrupt after any call)."""

from __future__ import annotations

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.kinds import REGISTRY
from tests.integration.faults import FaultInjector
from tests.integration.harness import World, sha_of


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> World:
    return World(settings, clients)


def deliver_until_done(world: World, event: object, attempts: int = 3) -> int:
    """Deliver like SQS does: again after a failure. Returns the failures seen."""
    failures = 0
    for _ in range(attempts):
        try:
            world.deliver(event)  # type: ignore[arg-type]
            return failures
        except Exception:
            failures += 1
    raise AssertionError("still failing after retries")


def count_calls(world: World, faults: FaultInjector, action: object) -> int:
    faults.reset()
    world.deliver(action)  # type: ignore[arg-type]
    return len(faults.calls)


def test_first_deploy_interrupted_after_every_call_finishes_without_leaks(world: World) -> None:
    faults = FaultInjector(world.clients)
    world.push_image(sha_of(1))
    world.deliver(world.push("warm-up", sha_of(1)))  # the ECR repository URI is now cached
    total = count_calls(world, faults, world.push("probe", sha_of(1)))
    assert total >= 10

    for k in range(1, total + 1):
        branch = f"interrupt-{k}"
        faults.reset(fail_at=k)
        failures = deliver_until_done(world, world.push(branch, sha_of(1)))

        assert failures == 1, f"call {k} ({faults.calls[-1:]}) did not fail the run"
        env = world.env(branch)
        assert env is not None and env.status == Status.DEPLOYING, (k, env)
        kinds = sorted(r.kind for r in world.leftovers(branch))
        assert kinds == sorted(spec.kind for spec in REGISTRY), (k, kinds)  # one of each kind


def test_teardown_interrupted_after_every_call_leaves_nothing(world: World) -> None:
    faults = FaultInjector(world.clients)
    world.push_image(sha_of(1))
    world.deliver(world.push("probe", sha_of(1)))
    total = count_calls(world, faults, world.delete("probe"))
    assert world.leftovers("probe") == []

    for k in range(1, total + 1):
        branch = f"teardown-{k}"
        world.deliver(world.push(branch, sha_of(1)))
        faults.reset(fail_at=k)
        deliver_until_done(world, world.delete(branch))

        env = world.env(branch)
        assert env is not None and env.status == Status.DELETED, (k, env)
        assert world.leftovers(branch) == [], k
    assert world.leftovers() == []
