"""Duplicates and out-of-order deliveries: the newest truth about a branch wins, a stale
event never resurrects or rolls back an environment, and a redelivery changes nothing."""

from __future__ import annotations

from chalicelib.domain.environments import Status
from chalicelib.engine.converge.kinds import REGISTRY
from tests.integration.harness import World, sha_of
from tests.reliability.support import assert_gone, assert_ready_at, deployment_completed

BRANCH = "feature/order"
T0 = 1_800_000_000.0


def service_names(world: World, branch: str) -> list[str]:
    slug = world.names(branch).slug
    return [r.identifier for r in world.leftovers(branch) if r.kind == "service" and r.env == slug]


def test_the_same_delivery_three_times_deploys_once(world: World) -> None:
    world.push_image(sha_of(1))
    push = world.push(BRANCH, sha_of(1))

    for _ in range(3):
        world.deliver(push)
    deployment_completed(world, BRANCH)
    world.deliver(push)

    assert_ready_at(world, BRANCH, sha_of(1))
    kinds = sorted(r.kind for r in world.leftovers(BRANCH))
    assert kinds == sorted(spec.kind for spec in REGISTRY)  # one of every kind
    world.deliver(world.delete(BRANCH))
    assert_gone(world, BRANCH)


def test_two_pushes_delivered_in_reverse_order_deploy_the_newer(world: World) -> None:
    world.push_image(sha_of(1))
    world.push_image(sha_of(2))
    older = world.push(BRANCH, sha_of(1), at=T0)
    newer = world.push(BRANCH, sha_of(2), at=T0 + 5)

    world.deliver(newer)
    world.deliver(older)
    deployment_completed(world, BRANCH)

    assert_ready_at(world, BRANCH, sha_of(2))
    world.deliver(world.delete(BRANCH, at=T0 + 10))
    assert_gone(world, BRANCH)


def test_a_delete_processed_before_its_create_leaves_nothing(world: World) -> None:
    create = world.create(BRANCH, at=T0)
    delete = world.delete(BRANCH, at=T0 + 20)

    world.deliver(delete)
    world.deliver(create)

    assert_gone(world, BRANCH)
    assert world.leftovers() == []


def test_a_push_arriving_after_the_delete_does_not_bring_the_branch_back(world: World) -> None:
    world.push_image(sha_of(1))
    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(1), at=T0))
    deployment_completed(world, BRANCH)
    late_push = world.push(BRANCH, sha_of(2), at=T0 + 10)
    delete = world.delete(BRANCH, at=T0 + 20)

    world.deliver(delete)
    world.deliver(late_push)

    assert_gone(world, BRANCH)
    assert world.leftovers() == []


def test_a_push_at_the_same_second_as_the_delete_does_not_bring_the_branch_back(
    world: World,
) -> None:
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1), at=T0))
    delete = world.delete(BRANCH, at=T0 + 20)
    tied_push = world.push(BRANCH, sha_of(1), at=T0 + 20)

    world.deliver(delete)
    world.deliver(tied_push)

    assert_gone(world, BRANCH)


def test_a_branch_deleted_and_created_again_within_a_minute_comes_back(world: World) -> None:
    world.push_image(sha_of(1))
    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(1), at=T0))
    deployment_completed(world, BRANCH)
    [old_service] = service_names(world, BRANCH)

    world.deliver(world.delete(BRANCH, at=T0 + 20))
    world.deliver(world.create(BRANCH, at=T0 + 50))
    world.deliver(world.push(BRANCH, sha_of(2), at=T0 + 60))
    deployment_completed(world, BRANCH)

    assert_ready_at(world, BRANCH, sha_of(2))
    env = world.env(BRANCH)
    assert env is not None and env.created_at > 0
    ecs = world.clients.client("ecs")
    old = ecs.describe_services(cluster=world.settings.cluster, services=[old_service])
    assert all(s["status"] in ("INACTIVE", "DRAINING") for s in old["services"]), old
    live = [arn.rsplit("/", 1)[-1] for arn in service_names(world, BRANCH)]
    assert live == [env.service_name] and env.service_name != old_service.rsplit("/", 1)[-1]
    world.deliver(world.delete(BRANCH, at=T0 + 90))
    assert_gone(world, BRANCH)
    assert world.leftovers() == []


def test_a_redelivered_delete_after_the_branch_came_back_is_ignored(world: World) -> None:
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1), at=T0))
    delete = world.delete(BRANCH, at=T0 + 20)
    world.deliver(delete)
    world.deliver(world.push(BRANCH, sha_of(1), at=T0 + 40))
    deployment_completed(world, BRANCH)

    world.deliver(delete)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY
    assert_ready_at(world, BRANCH, sha_of(1))


def test_a_branch_pushing_a_sha_another_branch_already_runs_deploys_it(world: World) -> None:
    # Regression: moto's BatchGetImage labelled the sha's image with the other branch's
    # tag, so the second branch waited for CI forever ("building").
    world.push_image(sha_of(1))
    world.push_image(sha_of(2))
    for branch in ("feature/first", BRANCH):
        world.deliver(world.push(branch, sha_of(1), at=T0))
        deployment_completed(world, branch)
    world.deliver(world.push("feature/first", sha_of(2), at=T0 + 10))
    deployment_completed(world, "feature/first")

    world.deliver(world.push(BRANCH, sha_of(2), at=T0 + 20))
    deployment_completed(world, BRANCH)

    assert_ready_at(world, BRANCH, sha_of(2))
    assert_ready_at(world, "feature/first", sha_of(2))


def test_a_late_completed_event_of_the_previous_rollout_does_not_make_the_next_commit_ready(
    world: World,
) -> None:
    """EventBridge delivers at least once and not in order: SERVICE_DEPLOYMENT_COMPLETED of
    the first rollout, repeated after the second push started its own, leaves the second
    commit deploying (the strict layer gives the new rollout its own deployment id, as ECS
    does; moto alone keeps the old one)."""
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1), at=T0))
    deployment_completed(world, BRANCH)
    first = [d["id"] for d in world.service(BRANCH)["deployments"] if d["status"] == "PRIMARY"]

    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2), at=T0 + 10))
    late = world.ecs_event("aws/ecs.deployment-completed", BRANCH)
    late["detail"]["deploymentId"] = first[0]
    world.aws_event(late)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    assert env.deployed_sha == sha_of(1) and env.deployment_id != first[0]
    deployment_completed(world, BRANCH)
    assert_ready_at(world, BRANCH, sha_of(2))
