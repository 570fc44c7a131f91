"""Branches created at the same moment never collide (priorities, slugs, names)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.aws.elbv2 import LoadBalancing
from chalicelib.domain.environments import CONCURRENT_UPDATE_ATTEMPTS, Status
from chalicelib.domain.settings import Settings
from tests.integration.harness import World, sha_of

BRANCHES = [f"feature/{n}" for n in range(10)] + [f"Feature/{n}" for n in range(10)]


def test_twenty_branches_created_concurrently_get_distinct_priorities_and_slugs(
    settings: Settings, clients: ClientFactory
) -> None:
    world = World(settings, clients)
    world.push_image(sha_of(1))
    events = [world.push(branch, sha_of(1)) for branch in BRANCHES]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(world.deliver, events))

    envs = [world.env(branch) for branch in BRANCHES]
    assert all(env is not None and env.status == Status.DEPLOYING for env in envs)
    assert len({env.slug for env in envs if env}) == 20
    priorities = {env.priority for env in envs if env}
    assert len(priorities) == 20 and None not in priorities
    rules = LoadBalancing(clients.client("elbv2")).list_managed_rules(
        settings.listeners[0].listener_arn, settings.app_name
    )
    assert len({rule.priority for rule in rules}) == 20

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(world.deliver, [world.delete(branch) for branch in BRANCHES]))
    assert world.leftovers() == []


def test_a_write_during_a_push_converge_never_loses_the_pushed_commit(
    settings: Settings, clients: ClientFactory
) -> None:
    """A push's desired state is carried by converge's own write (desire_of). Another
    writer (the reaper noting something, say) writes the record while that converge runs:
    the push's commit still ends up desired, and deployed."""
    world = World(settings, clients)
    branch = "feature/raced"
    world.make_ready(branch, sha_of(1))
    world.push_image(sha_of(2))
    store = world.runtime.store
    raced: list[int] = []

    def another_writer(model: object, **_: object) -> None:
        if getattr(model, "name", "") == "RegisterTaskDefinition" and not raced:
            current = world.env(branch)
            assert current is not None and current.desired_sha == sha_of(1)  # not written yet
            raced.append(store.put(replace(current, reason="noted by another writer")).version)

    ecs = clients.client("ecs")
    ecs.meta.events.register("before-call.ecs.RegisterTaskDefinition", another_writer)
    try:
        world.deliver(world.push(branch, sha_of(2)))
    finally:
        ecs.meta.events.unregister("before-call.ecs.RegisterTaskDefinition", another_writer)
    world.deployment_completed(branch)

    env = world.env(branch)
    assert raced and env is not None
    assert env.desired_sha == sha_of(2) and env.deployed_sha == sha_of(2)
    assert env.status == Status.READY
    world.deliver(world.delete(branch))
    assert world.leftovers() == []


class RivalWriter:
    """Another writer of one environment's record that gets in first, ``times`` times:
    just before each of the next ``times`` DynamoDB writes the runtime sends once armed,
    it writes the record through a client of its own (whose calls these hooks never see)."""

    OPERATIONS = ("PutItem", "TransactWriteItems")

    def __init__(self, world: World, branch: str, times: int) -> None:
        self.world, self.branch, self.left = world, branch, times
        self.armed = False
        self.writes = 0
        self._store = DynamoEnvironmentStore(
            world.aws_side.client("dynamodb"), world.settings.table_name
        )
        self._events = world.clients.client("dynamodb").meta.events

    def __enter__(self) -> RivalWriter:
        for operation in self.OPERATIONS:
            self._events.register(f"before-call.dynamodb.{operation}", self._write_first)
        return self

    def __exit__(self, *_: object) -> None:
        for operation in self.OPERATIONS:
            self._events.unregister(f"before-call.dynamodb.{operation}", self._write_first)

    def _write_first(self, **_: object) -> None:
        current = self._store.get(self.world.names(self.branch).slug)
        if not self.armed or not self.left or current is None:
            return
        self.left -= 1
        self.writes += 1
        self._store.put(replace(current, reason=f"noted by another writer {self.writes}"))


def test_a_push_converge_outlasts_a_record_that_keeps_changing_while_it_writes(
    settings: Settings, clients: ClientFactory
) -> None:
    """Converge's writes follow the one retry policy (CONCURRENT_UPDATE_ATTEMPTS): each
    lost race re-reads the record, keeps the other writer's desired state and this run's
    progress, and writes again, so several races in a row still deploy the push."""
    world = World(settings, clients)
    branch = "feature/contended"
    world.make_ready(branch, sha_of(1))
    world.push_image(sha_of(2))
    rival = RivalWriter(world, branch, times=CONCURRENT_UPDATE_ATTEMPTS - 1)

    def arm(**_: object) -> None:
        rival.armed = True

    ecs = clients.client("ecs")
    ecs.meta.events.register("before-call.ecs.RegisterTaskDefinition", arm)
    try:
        with rival:
            world.deliver(world.push(branch, sha_of(2)))
    finally:
        ecs.meta.events.unregister("before-call.ecs.RegisterTaskDefinition", arm)
    world.deployment_completed(branch)

    env = world.env(branch)
    assert rival.writes == CONCURRENT_UPDATE_ATTEMPTS - 1
    assert env is not None and env.desired_sha == sha_of(2) and env.deployed_sha == sha_of(2)
    assert env.status == Status.READY
