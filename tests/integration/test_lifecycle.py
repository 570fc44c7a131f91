"""create → push → push → delete for real payloads, against moto: the resources at each
stage, and none at the end."""

from __future__ import annotations

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.kinds import REGISTRY
from tests.integration.harness import World, sha_of

BRANCH = "feature/login"
FULL = {spec.kind for spec in REGISTRY}  # one of every kind branchenv makes


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> World:
    return World(settings, clients)


def test_create_push_push_delete_leaves_exactly_the_expected_resources(world: World) -> None:
    world.deliver(world.create(BRANCH))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.PENDING
    assert world.kinds(BRANCH) == {"dns_record", "target_group", "listener_rule", "priority_claim"}

    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1)))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    assert world.kinds(BRANCH) == FULL

    world.deployment_completed(BRANCH)
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(1)
    assert env.ready_seconds and env.ready_seconds[0] >= 0

    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2)))
    env = world.env(BRANCH)
    # The previous commit serves until the new one is ready.
    assert env is not None and env.status == Status.DEPLOYING and env.deployed_sha == sha_of(1)
    service = world.runtime.converger.containers.find_service(env.service_name or "")
    assert service is not None and service.task_definition_arn.endswith(":2")
    world.deployment_completed(BRANCH)
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]

    world.deliver(world.delete(BRANCH))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED and env.expires_at is not None
    assert world.leftovers() == []


def test_the_service_runs_the_image_of_the_pushed_sha_with_its_variables(world: World) -> None:
    world.push_image(sha_of(7))
    world.deliver(world.push(BRANCH, sha_of(7)))

    names = world.names(BRANCH)
    td = world.runtime.converger.containers.find_task_definition(names.task_family)
    assert td is not None
    assert td.image.endswith(f":{sha_of(7)}")
    assert td.environment["BRANCH"] == BRANCH
    assert td.environment["BRANCH_SLUG"] == names.slug
    assert td.environment["COMMIT_SHA"] == sha_of(7)
    assert td.environment["PREVIEW_URL"] == f"https://{names.host}"
    images = world.runtime.converger.images.find_images([names.branch_tag])
    assert names.branch_tag in images


def test_a_duplicate_delivery_changes_nothing(world: World) -> None:
    world.push_image(sha_of(1))
    push = world.push(BRANCH, sha_of(1))
    world.deliver(push)
    before = world.env(BRANCH)
    resources = world.leftovers(BRANCH)

    world.deliver(push)

    after = world.env(BRANCH)
    assert after is not None and before is not None
    assert after.version == before.version
    assert world.leftovers(BRANCH) == resources


def test_a_stale_push_is_ignored(world: World) -> None:
    world.push_image(sha_of(1))
    world.push_image(sha_of(2))
    newer = world.push(BRANCH, sha_of(2), at=2_000_000_000)
    older = world.push(BRANCH, sha_of(1), at=1_900_000_000)

    world.deliver(newer)
    world.deliver(older)

    env = world.env(BRANCH)
    assert env is not None and env.desired_sha == sha_of(2) and env.status == Status.DEPLOYING
    service = world.service(BRANCH)
    assert service["taskDefinition"] == env.task_definition_arn
    td = world.runtime.converger.containers.find_task_definition(world.names(BRANCH).task_family)
    assert td is not None and td.image.endswith(f":{sha_of(2)}")


def test_a_late_push_does_not_resurrect_a_deleted_branch(world: World) -> None:
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1), at=2_000_000_000))
    world.deliver(world.delete(BRANCH, at=2_000_000_100))

    world.deliver(world.push(BRANCH, sha_of(1), at=2_000_000_050))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert world.leftovers() == []


def test_a_push_without_an_image_waits_in_building(world: World) -> None:
    world.deliver(world.push(BRANCH, sha_of(3)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.BUILDING
    assert "service" not in world.kinds(BRANCH)

    world.push_image(sha_of(3))
    world.deliver(world.push(BRANCH, sha_of(3)))
    assert world.env(BRANCH).status == Status.DEPLOYING  # type: ignore[union-attr]


def test_a_branch_whose_record_was_lost_takes_back_what_it_had_and_leaks_nothing(
    world: World,
) -> None:
    """The record is gone (deleted by hand) while everything converge made is there; the
    next push makes a new record that knows of nothing. Converge's first write meets what
    is there (the DNS record, the rule's priority, the service's name) and observes
    everything, so nothing is made twice and the delete leaves nothing."""
    world.make_ready(BRANCH, sha_of(1))
    before = {(r.kind, r.identifier) for r in world.leftovers(BRANCH)}
    world.clients.client("dynamodb").delete_item(
        TableName=world.settings.table_name, Key={"pk": {"S": f"env#{world.names(BRANCH).slug}"}}
    )

    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2)))
    world.deployment_completed(BRANCH)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(2)
    after = world.leftovers(BRANCH)
    assert sorted(r.kind for r in after) == sorted(
        [*FULL, "task_definition"]  # the new commit's revision beside the old one
    )
    assert {(r.kind, r.identifier) for r in after if r.kind != "task_definition"} <= before
    world.deliver(world.delete(BRANCH))
    assert world.leftovers() == []


def test_a_push_after_the_service_was_deleted_by_hand_brings_a_new_one(world: World) -> None:
    """The record trusts the service converge made; it was deleted by hand meanwhile. The
    push's UpdateService is refused (ServiceNotActiveException, as AWS answers for a
    deleted service: the strict layer plays it, moto alone updates it), so converge looks
    at everything at once and creates the next generation."""
    world.make_ready(BRANCH, sha_of(1))
    env = world.env(BRANCH)
    assert env is not None and env.known and env.service_name is not None
    old_name = env.service_name
    world.clients.client("ecs").delete_service(
        cluster=world.settings.cluster, service=old_name, force=True
    )

    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2)))
    world.deployment_completed(BRANCH)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(2)
    assert env.service_name not in (None, old_name)
    world.deliver(world.delete(BRANCH))
    assert world.leftovers() == []
