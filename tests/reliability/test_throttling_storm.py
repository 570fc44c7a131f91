"""A throttling storm: 30% of the HTTP attempts to AWS are answered 400 Throttling before
they reach it (a seeded random choice). botocore's retries absorb them, anything that
gets past them is redelivered as SQS would, and the environment still converges: the
pushed sha is deployed, the reaper finds nothing to fix, and nothing leaks.

botocore's own retry handler decides every retry and computes its backoff; the factory's
``sleep`` (chalicelib/aws/clients.py) lets each backoff pass at once instead of in
``time.sleep``, and records it, so the test sees that throttles were retried with backoff."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from botocore.config import Config

from chalicelib.aws.clients import RETRY_CONFIG, ClientFactory
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Settings
from tests.conftest import REGION, SESSION, strict
from tests.integration.faults import WITH_EVENTS, FaultInjector
from tests.integration.harness import World, sha_of
from tests.reliability.support import (
    MAX_RECEIVE_COUNT,
    FakeGitHub,
    assert_gone,
    deliver_until_done,
    deployment_completed,
    reap,
)

BRANCHES = ("storm/a", "storm/b", "storm/c")  # run side by side, as Lambda would
RATE = 0.3
SEED = 20260601
# The production retry decisions (which errors are retried, how many attempts) without
# adaptive mode's client-side rate limiter, which after the first throttle holds a client
# to about one request every two seconds: right against AWS, minutes of sleep against moto.
# test_retries.py checks that every production client is in adaptive mode.
STORM_CONFIG = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 8}))


class Backoffs:
    """The retry delays botocore asked to wait, from every thread; none is waited."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)


def lifecycle(world: World, github: FakeGitHub, branch: str) -> Environment | None:
    """A push, a second push while the first deploys, ready, the delete. Returns the
    record as it was when ready."""
    for sha in (sha_of(1), sha_of(2)):
        github.set_head(branch, sha)
        deliver_until_done(world, world.push(branch, sha))
    deployment_completed(world, branch)
    # The three lifecycles share one FIFO queue, as the branches of one installation do:
    # the rollout's converge message may be in another thread's hands (in flight, or
    # failed and visible again), and SQS delivers it again to whoever receives next.
    ready = world.env(branch)
    for _ in range(MAX_RECEIVE_COUNT * 10):
        if ready is None or ready.status != Status.DEPLOYING:
            break
        with contextlib.suppress(Exception):  # a throttled receive: SQS delivers it again
            world.drain()
        time.sleep(0.01)
        ready = world.env(branch)
    github.remove(branch)
    deliver_until_done(world, world.delete(branch))
    return ready


def test_lifecycles_converge_and_leak_nothing_when_30_percent_of_calls_are_throttled(
    settings: Settings, github: FakeGitHub
) -> None:
    backoffs = Backoffs()
    clients = ClientFactory(REGION, config=STORM_CONFIG, session=SESSION, sleep=backoffs.sleep)
    strict(clients)
    world = World(settings, clients)
    world.push_image(sha_of(1))
    world.push_image(sha_of(2))
    faults = FaultInjector(world.clients, services=WITH_EVENTS)
    faults.storm(RATE, SEED)

    with ThreadPoolExecutor(max_workers=len(BRANCHES)) as pool:
        ready = list(pool.map(lambda branch: lifecycle(world, github, branch), BRANCHES))
    report = reap(world, github)
    faults.storm(0.0, SEED)

    assert faults.throttled >= 0.2 * faults.attempts, (faults.throttled, faults.attempts)
    # botocore retried the throttled attempts (all but those that used up a call's attempts
    # or its retry quota), each after an exponential backoff with jitter (at most 20 s).
    retried = len(backoffs.delays)
    assert 0.9 * faults.throttled <= retried, (retried, faults.throttled)
    assert all(0 <= delay <= 20 for delay in backoffs.delays), max(backoffs.delays)
    assert max(backoffs.delays) > 1, "no second retry of one call: the backoff never grew"
    assert report.errors == [] and report.orphans == []
    for branch, env in zip(BRANCHES, ready, strict=True):
        assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(2)
        assert_gone(world, branch)
    assert world.leftovers() == []
