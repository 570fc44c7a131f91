"""Fifty branches created by parallel workers, then deleted by parallel workers: every
environment gets its own slug, names and listener rule priority, and nothing is left."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.aws.elbv2 import LoadBalancing
from chalicelib.domain.environments import Environment, Status
from tests.integration.harness import World, sha_of

# Branches that differ only in case or punctuation get different slugs (a hash suffix).
BRANCHES = (
    [f"feature/{n}" for n in range(20)]
    + [f"Feature/{n}" for n in range(15)]
    + [f"feature_{n}" for n in range(10)]
    + [f"fix/ünïcode-{n}" for n in range(5)]
)
WORKERS = 8


def environments(world: World) -> list[Environment]:
    found = [world.env(branch) for branch in BRANCHES]
    assert all(env is not None for env in found)
    return [env for env in found if env is not None]


def test_fifty_branches_created_and_deleted_in_parallel_collide_nowhere(world: World) -> None:
    assert len(set(BRANCHES)) == 50
    world.push_image(sha_of(1))
    pushes = [world.push(branch, sha_of(1)) for branch in BRANCHES]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(world.deliver, pushes))

    envs = environments(world)
    assert {env.status for env in envs} == {Status.DEPLOYING}
    assert len({env.slug for env in envs}) == 50
    assert len({env.priority for env in envs} - {None}) == 50
    assert len({env.service_name for env in envs} - {None}) == 50
    assert len({env.target_group_arn for env in envs} - {None}) == 50
    rules = LoadBalancing(world.clients.client("elbv2")).list_managed_rules(
        world.settings.listeners[0].listener_arn, world.settings.app_name
    )
    assert len({rule.priority for rule in rules}) == 50
    assert len(world.leftovers()) == 50 * 7

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(world.deliver, [world.delete(branch) for branch in BRANCHES]))

    assert {env.status for env in environments(world)} == {Status.DELETED}
    assert world.leftovers() == []
