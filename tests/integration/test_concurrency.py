"""Branches created at the same moment never collide (priorities, slugs, names)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.elbv2 import LoadBalancing
from chalicelib.domain.environments import Status
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
