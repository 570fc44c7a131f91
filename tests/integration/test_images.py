"""Image sources (build, ci, retag), AWS events back, and readiness, against moto."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from botocore.stub import Stubber

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.codebuild import Builds
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from chalicelib.handlers.worker import backoff_seconds
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import load_event, settings_for
from tests.integration.harness import World, sha_of
from tests.integration.images import push_test_image

BRANCH = "feature/login"


def world_with(infra: BaseInfrastructure, clients: ClientFactory, **settings: str) -> World:
    return World(settings_for(infra, **settings), clients)


def builds_of(world: World) -> list[dict[str, Any]]:
    codebuild = world.clients.client("codebuild")
    ids = codebuild.list_builds_for_project(projectName=world.settings.codebuild_project)["ids"]
    return codebuild.batch_get_builds(ids=ids)["builds"] if ids else []


def codebuild_event(world: World, name: str, sha: str) -> dict[str, Any]:
    event: dict[str, Any] = load_event(name)
    detail = event["detail"]
    detail["project-name"] = world.settings.codebuild_project
    info = detail["additional-information"]
    info["source-version"] = sha
    for variable in info["environment"]["environment-variables"]:
        if variable["name"] == "BRANCHENV_ENV":
            variable["value"] = world.names(BRANCH).slug
    return event


def test_build_mode_starts_a_codebuild_build_of_the_exact_sha(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="build")

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.BUILDING and env.build_id
    [build] = builds_of(world)
    assert build["id"] == env.build_id
    assert build["sourceVersion"] == sha_of(1)


def test_build_mode_deploys_once_codebuild_pushed_the_image(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="build")
    world.deliver(world.push(BRANCH, sha_of(1)))

    world.push_image(sha_of(1))  # what the buildspec does
    world.aws_event(codebuild_event(world, "aws/codebuild.build-succeeded", sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    assert len(builds_of(world)) == 1


def test_an_image_already_in_ecr_is_reused_not_rebuilt(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="build")
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    assert world.env(BRANCH).status == Status.DEPLOYING  # type: ignore[union-attr]
    assert builds_of(world) == []


def test_a_failed_build_fails_the_environment_with_the_build_log(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="build")
    world.deliver(world.push(BRANCH, sha_of(1)))

    world.aws_event(codebuild_event(world, "aws/codebuild.build-failed", sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None
    assert "image build for 0000000 failed in its BUILD phase" in env.reason
    assert "push again" in env.reason
    assert env.log_url is not None and env.log_url.startswith("https://console.aws.amazon.com/")
    assert "service" not in world.kinds(BRANCH)


def test_a_push_during_a_build_stops_the_superseded_build(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="build")
    world.deliver(world.push(BRANCH, sha_of(1)))
    first = world.env(BRANCH)
    assert first is not None and first.build_id is not None
    # moto gap: moto's CodeBuild moves a build through its phases on every read, so it is
    # never IN_PROGRESS when converge looks; the Stubber answers as CodeBuild would while
    # the first build is still running.
    codebuild = world.clients.client("codebuild")
    stub = Stubber(codebuild)
    stub.add_response(
        "batch_get_builds",
        {
            "builds": [
                {"id": first.build_id, "buildStatus": "IN_PROGRESS", "sourceVersion": sha_of(1)}
            ]
        },
        {"ids": [first.build_id]},
    )
    stub.add_response(
        "stop_build",
        {"build": {"id": first.build_id, "buildStatus": "STOPPED"}},
        {"id": first.build_id},
    )
    stub.add_response(
        "start_build",
        {
            "build": {
                "id": "demo-build:second",
                "buildStatus": "IN_PROGRESS",
                "sourceVersion": sha_of(2),
            }
        },
        None,
    )
    world.runtime.converger.builds = Builds(codebuild, world.settings.codebuild_project or "")

    with stub:
        world.deliver(world.push(BRANCH, sha_of(2)))
        stub.assert_no_pending_responses()

    env = world.env(BRANCH)
    assert env is not None and env.build_id == "demo-build:second"
    assert env.status == Status.BUILDING


def test_ci_mode_waits_for_the_ecr_push_event_and_never_builds(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="ci")
    world.deliver(world.push(BRANCH, sha_of(4)))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.BUILDING
    assert env.reason is not None and "waiting for CI to push" in env.reason

    world.push_image(sha_of(4))
    event = load_event("aws/ecr.image-push")
    event["detail"]["image-tag"] = sha_of(4)
    assert world.aws_event(event) == [world.names(BRANCH).slug]

    assert world.env(BRANCH).status == Status.DEPLOYING  # type: ignore[union-attr]
    assert builds_of(world) == []


def test_retag_mode_adopts_an_image_under_the_pattern(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="retag", retag_pattern="ci-{sha}")
    from tests.integration.images import push_test_image

    push_test_image(clients.client("ecr"), world.settings.ecr_repository, f"ci-{sha_of(5)}")

    world.deliver(world.push(BRANCH, sha_of(5)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    found = world.runtime.converger.images.find_images([sha_of(5)])
    assert sha_of(5) in found
    assert builds_of(world) == []


def test_the_completed_event_of_the_recorded_deployment_makes_it_ready_at_once(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    """ECS completes a deployment only once its tasks pass the load balancer's health
    check (ECS developer guide, "Optimize load balancer health check parameters"), so the
    event about the deployment converge started is enough: no wait, no read."""
    world = world_with(infra, clients)
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1)))
    env = world.env(BRANCH)
    assert env is not None and env.deployment_id is not None
    event = world.ecs_event("aws/ecs.deployment-completed", BRANCH)
    event["detail"]["deploymentId"] = env.deployment_id
    before = world.waited

    world.aws_event(event)

    assert world.waited == before
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_without_a_recorded_deployment_ready_needs_the_event_and_a_healthy_target(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients)
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1)))
    env = world.env(BRANCH)
    assert env is not None
    world.runtime.store.put(replace(env, deployment_id=None))  # written by an older version

    statuses: list[Status] = []

    def target_turns_healthy() -> None:  # while the worker waits its first backoff
        statuses.append(world.env(BRANCH).status)  # type: ignore[union-attr]
        world.register_healthy_target(BRANCH)

    world.while_waiting = target_turns_healthy
    before = world.waited
    event = world.ecs_event("aws/ecs.deployment-completed", BRANCH)
    primary = [d["id"] for d in world.service(BRANCH)["deployments"] if d["status"] == "PRIMARY"]
    event["detail"]["deploymentId"] = primary[0]  # the rollout the worker started
    world.aws_event(event)

    assert statuses == [Status.DEPLOYING]  # not ready on the event alone
    assert world.waited - before == backoff_seconds(1)  # the same message, again after 2 s
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_a_failed_deployment_fails_with_the_reason_from_ecs(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients)
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1)))

    world.aws_event(world.ecs_event("aws/ecs.deployment-failed", BRANCH))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "circuit breaker: task failed to start" in env.reason
    assert env.log_url is not None and "log-groups" in env.log_url


def test_a_spot_interruption_is_recorded_and_the_environment_stays_up(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients)
    world.make_ready(BRANCH, sha_of(1))

    world.aws_event(world.ecs_event("aws/ecs.task-spot-interrupted", BRANCH))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY
    assert env.spot_interruptions == 1


def test_one_interrupted_task_counts_once_however_often_eventbridge_delivers_it(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    # EventBridge delivers at least once: the same STOPPED event may come twice.
    world = world_with(infra, clients)
    world.make_ready(BRANCH, sha_of(1))
    event = world.ecs_event("aws/ecs.task-spot-interrupted", BRANCH)

    world.aws_event(event)
    world.aws_event(event)
    other = world.ecs_event("aws/ecs.task-spot-interrupted", BRANCH)
    other["detail"]["taskArn"] = event["detail"]["taskArn"] + "0"
    world.aws_event(other)

    env = world.env(BRANCH)
    assert env is not None and env.spot_interruptions == 2


def test_events_about_resources_that_are_not_ours_are_ignored(
    settings: Settings, clients: ClientFactory
) -> None:
    world = World(settings, clients)
    event = load_event("aws/ecs.deployment-completed")
    event["resources"] = ["arn:aws:ecs:us-east-1:123456789012:service/demo/hand-made"]

    assert world.aws_event(event) == []


def test_a_deleted_branch_takes_its_build_cache_and_leaves_the_default_branchs(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    world = world_with(infra, clients, image_source="build")
    ecr = clients.client("ecr")
    world.deliver(world.push(BRANCH, sha_of(1)))
    world.push_image(sha_of(1))  # what the buildspec pushes: the image, and its layer cache
    push_test_image(ecr, infra.ecr_repository_name, world.names(BRANCH).cache_tag, seed="c1")
    push_test_image(ecr, infra.ecr_repository_name, "cache-main", seed="c0")  # main's CI
    world.aws_event(codebuild_event(world, "aws/codebuild.build-succeeded", sha_of(1)))

    world.deliver(world.delete(BRANCH))

    listed = ecr.list_images(repositoryName=infra.ecr_repository_name)["imageIds"]
    tags = {image.get("imageTag") for image in listed}
    assert world.names(BRANCH).cache_tag not in tags
    assert "cache-main" in tags
    assert world.leftovers() == []
