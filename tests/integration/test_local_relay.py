"""The local event relay plays ECS and CodeBuild against moto and delivers AWS-shaped events.

ECS's deployment circuit breaker with rollback is played as the ECS developer guide
describes it ("Amazon ECS service deployment state change events"; "deployment circuit
breaker"): the failed deployment's SERVICE_DEPLOYMENT_FAILED, the service back on its last
completed task definition, then the rollback deployment's IN_PROGRESS and COMPLETED.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import boto3
import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.relay import BuildRecorder, EventRelay, stand_in_address
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, REGION

SHA = "0123456789abcdef0123456789abcdef01234567"
GOOD = "1" * 40
BAD = "2" * 40


class Delivered:
    """Collects what the relay delivers, as the Chalice handlers would receive it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, handler: str, event: dict[str, Any]) -> bool:
        self.events.append((handler, event))
        return True

    def of(self, handler: str) -> list[dict[str, Any]]:
        return [event for name, event in self.events if name == handler]


@pytest.fixture
def aws_side(aws: None) -> ClientFactory:
    """Clients without the strict layer, as the local stack gives the relay: the relay
    stands in for AWS itself (ECS moving a service on), not for a caller of its API."""
    return ClientFactory(REGION)


def _described(clients: ClientFactory, infra: BaseInfrastructure, service_arn: str) -> Any:
    """The service as DescribeServices answers through ``clients``."""
    answer = clients.client("ecs").describe_services(
        cluster=infra.cluster_name, services=[service_arn]
    )
    return answer["services"][0]


def _relay(
    clients: ClientFactory,
    infra: BaseInfrastructure,
    delivered: Delivered,
    recorder: BuildRecorder,
    failing: Collection[str] = (),
    port_reachable: Callable[[str, int], bool] | None = None,
) -> EventRelay:
    return EventRelay(
        clients,
        delivered,
        recorder,
        app_name=APP,
        cluster=infra.cluster_name,
        ecr_repository=infra.ecr_repository_name,
        region=REGION,
        build_seconds=0.1,
        poll_seconds=0.05,
        failing_shas=lambda: failing,
        port_reachable=port_reachable,
    )


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)


def _task_definition(clients: ClientFactory, app: str, sha: str) -> str:
    answer = clients.client("ecs").register_task_definition(
        family=f"{app}-web",
        containerDefinitions=[
            {
                "name": "app",
                "image": f"nginx:{sha}",
                "memory": 512,
                "environment": [{"name": "COMMIT_SHA", "value": sha}],
            }
        ],
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def _service(
    clients: ClientFactory, infra: BaseInfrastructure, app: str, sha: str = GOOD, port: int = 8080
) -> tuple[str, str]:
    elbv2 = clients.client("elbv2")
    group = elbv2.create_target_group(
        Name=f"be-{app}-web", Protocol="HTTP", Port=port, VpcId=infra.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    ecs = clients.client("ecs")
    task = _task_definition(clients, app, sha)
    service = ecs.create_service(
        cluster=infra.cluster_name,
        serviceName=f"{app}-web_1",
        taskDefinition=task,
        desiredCount=1,
        loadBalancers=[{"targetGroupArn": group, "containerName": "app", "containerPort": port}],
        tags=[
            {"key": "branchenv:managed", "value": "true"},
            {"key": "branchenv:app", "value": app},
        ],
    )["service"]["serviceArn"]
    return service, group


def test_new_service_gets_a_healthy_target_and_a_deployment_completed_event(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    service_arn, group_arn = _service(aws_side, infra, APP)
    relay = _relay(aws_side, infra, delivered, BuildRecorder())

    relay.start()
    _until(lambda: "SERVICE_DEPLOYMENT_COMPLETED" in _names(delivered))
    relay.stop()

    health = aws_side.client("elbv2").describe_target_health(TargetGroupArn=group_arn)
    started, event = delivered.of("ecs_deployment")
    assert [
        (t["Target"]["Id"], t["TargetHealth"]["State"]) for t in health["TargetHealthDescriptions"]
    ] == [(stand_in_address(service_arn), "healthy")]
    assert started["detail"]["eventName"] == "SERVICE_DEPLOYMENT_IN_PROGRESS"
    assert event["detail-type"] == "ECS Deployment State Change"
    assert event["detail"]["eventName"] == "SERVICE_DEPLOYMENT_COMPLETED"
    assert event["resources"] == [service_arn]
    assert event["detail"]["deploymentId"] == started["detail"]["deploymentId"]


def _names(delivered: Delivered) -> list[str]:
    return [event["detail"]["eventName"] for event in delivered.of("ecs_deployment")]


def _count_register_targets(clients: ClientFactory) -> list[dict[str, Any]]:
    """Every RegisterTargets the relay's elbv2 client makes (a botocore hook)."""
    calls: list[dict[str, Any]] = []
    clients.client("elbv2").meta.events.register(
        "before-parameter-build.elbv2.RegisterTargets",
        lambda params, **_: calls.append(dict(params)),
    )
    return calls


def test_failed_redeploy_rolls_back_to_the_last_completed_task_definition(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    registered = _count_register_targets(aws_side)
    service_arn, group_arn = _service(aws_side, infra, APP, sha=GOOD)
    good_task = _described(aws_side, infra, service_arn)["taskDefinition"]
    relay = _relay(aws_side, infra, delivered, BuildRecorder(), failing={BAD})
    app_side = ClientFactory(REGION)  # the app's clients: DescribeServices as ECS answers it
    relay.install(app_side)
    relay.start()
    completed = ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]
    _until(lambda: _names(delivered) == completed)

    bad_task = _task_definition(aws_side, APP, BAD)
    aws_side.client("ecs").update_service(
        cluster=infra.cluster_name, service=service_arn, taskDefinition=bad_task
    )
    _until(lambda: len(delivered.of("ecs_deployment")) >= 6)
    time.sleep(0.3)  # nothing more comes: the rollback is not itself redeployed
    relay.stop()

    events = delivered.of("ecs_deployment")
    service = _described(aws_side, infra, service_arn)
    assert _names(delivered) == [
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_COMPLETED",
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_FAILED",
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_COMPLETED",
    ]
    failed, rollback, rolled_back = events[3], events[4], events[5]
    assert failed["detail"]["eventType"] == "ERROR"
    assert failed["detail"]["reason"] == "ECS deployment circuit breaker: task failed to start."
    first_id = events[1]["detail"]["deploymentId"]
    assert rollback["detail"]["reason"] == (
        f"ECS deployment circuit breaker: rolling back to deploymentId {first_id}."
    )
    assert rolled_back["detail"]["deploymentId"] == rollback["detail"]["deploymentId"]
    assert rollback["detail"]["deploymentId"] != failed["detail"]["deploymentId"]
    assert service["taskDefinition"] == good_task
    assert len(registered) == 1  # the first deployment's task; none for the failed one
    seen = _described(app_side, infra, service_arn)["deployments"]
    assert [
        (d["status"], d["taskDefinition"], d["rolloutState"], d["rolloutStateReason"]) for d in seen
    ] == [
        (
            "PRIMARY",
            good_task,
            "COMPLETED",
            f"ECS deployment {rolled_back['detail']['deploymentId']} completed.",
        ),
        ("ACTIVE", bad_task, "FAILED", "ECS deployment circuit breaker: task failed to start."),
    ]
    health = aws_side.client("elbv2").describe_target_health(TargetGroupArn=group_arn)
    assert [t["TargetHealth"]["State"] for t in health["TargetHealthDescriptions"]] == ["healthy"]


def test_service_that_never_completed_a_deployment_just_fails(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    registered = _count_register_targets(aws_side)
    service_arn, group_arn = _service(aws_side, infra, APP, sha=BAD)
    bad_task = _described(aws_side, infra, service_arn)["taskDefinition"]
    relay = _relay(aws_side, infra, delivered, BuildRecorder(), failing={BAD})
    app_side = ClientFactory(REGION)
    relay.install(app_side)

    relay.start()
    _until(lambda: "SERVICE_DEPLOYMENT_FAILED" in _names(delivered))
    time.sleep(0.3)
    relay.stop()

    service = _described(aws_side, infra, service_arn)
    health = aws_side.client("elbv2").describe_target_health(TargetGroupArn=group_arn)
    assert _names(delivered) == ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_FAILED"]
    assert (service["taskDefinition"], service["desiredCount"]) == (bad_task, 1)
    assert [
        (d["status"], d["rolloutState"])
        for d in _described(app_side, infra, service_arn)["deployments"]
    ] == [("PRIMARY", "FAILED")]
    assert registered == []
    assert health["TargetHealthDescriptions"] == []


def test_deployment_fails_when_the_security_groups_block_its_port(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    asked: list[tuple[str, int]] = []

    def reachable(group: str, port: int) -> bool:
        asked.append((group, port))
        return port != 3000

    _, group_arn = _service(aws_side, infra, APP, port=3000)
    relay = _relay(aws_side, infra, delivered, BuildRecorder(), port_reachable=reachable)

    relay.start()
    _until(lambda: "SERVICE_DEPLOYMENT_FAILED" in _names(delivered))
    relay.stop()

    assert asked == [(group_arn, 3000)]
    assert _names(delivered) == ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_FAILED"]


def test_services_of_another_installation_are_left_alone(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    _service(aws_side, infra, "other")
    relay = _relay(aws_side, infra, delivered, BuildRecorder())

    relay.start()
    time.sleep(0.5)
    relay.stop()

    assert delivered.of("ecs_deployment") == []


def _start_build(infra: BaseInfrastructure, recorder: BuildRecorder, branch_tag: str) -> str:
    session = boto3.Session(region_name=REGION)
    recorder.install(session.events)
    codebuild = ClientFactory(REGION, session=session).client("codebuild")
    build = codebuild.start_build(
        projectName=infra.codebuild_project_name,
        sourceVersion=SHA,
        environmentVariablesOverride=[
            {"name": "IMAGE_TAG", "value": SHA, "type": "PLAINTEXT"},
            {"name": "BRANCH_TAG", "value": branch_tag, "type": "PLAINTEXT"},
        ],
    )["build"]
    return str(build["arn"])


def test_started_build_pushes_both_tags_and_succeeds(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered, recorder = Delivered(), BuildRecorder()
    relay = _relay(aws_side, infra, delivered, recorder)
    build_arn = _start_build(infra, recorder, "branch-feature-login")

    relay.start()
    _until(lambda: bool(delivered.of("codebuild_state")))
    relay.stop()

    images = aws_side.client("ecr").describe_images(repositoryName=infra.ecr_repository_name)
    tags = {tag for image in images["imageDetails"] for tag in image.get("imageTags", [])}
    [event] = delivered.of("codebuild_state")
    assert tags == {SHA, "branch-feature-login"}
    assert event["detail"]["build-status"] == "SUCCEEDED"
    assert event["detail"]["build-id"] == build_arn
    assert len(delivered.of("ecr_push")) == 2


def test_fail_build_branch_gets_a_failed_build_and_no_image(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered, recorder = Delivered(), BuildRecorder()
    relay = _relay(aws_side, infra, delivered, recorder)
    app_side = ClientFactory(REGION)  # the app's clients: BatchGetBuilds as CodeBuild answers
    relay.install(app_side)
    build_id = _start_build(infra, recorder, "branch-feature-broken--fail-build").split("/")[-1]

    def status() -> tuple[str, str, list[tuple[str, str]]]:
        [build] = app_side.client("codebuild").batch_get_builds(ids=[build_id])["builds"]
        phases = [(p["phaseType"], p.get("phaseStatus", "")) for p in build["phases"]]
        return build["buildStatus"], build["currentPhase"], phases

    before = status()
    relay.start()
    _until(lambda: bool(delivered.of("codebuild_state")))
    relay.stop()

    images = aws_side.client("ecr").describe_images(repositoryName=infra.ecr_repository_name)
    [event] = delivered.of("codebuild_state")
    assert event["detail"]["build-status"] == "FAILED"
    assert images["imageDetails"] == []
    assert before[:2] == ("IN_PROGRESS", "BUILD")  # moto alone says SUCCEEDED at once
    after = status()
    assert after[:2] == ("FAILED", "COMPLETED")
    assert after[2][-1] == ("BUILD", "FAILED")


def test_stopped_build_is_reported_stopped(
    aws_side: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered, recorder = Delivered(), BuildRecorder()
    relay = _relay(aws_side, infra, delivered, recorder)
    build_arn = _start_build(infra, recorder, "branch-feature-old")
    session = boto3.Session(region_name=REGION)
    recorder.install(session.events)
    ClientFactory(REGION, session=session).client("codebuild").stop_build(
        id=build_arn.split("/")[-1]
    )

    relay.start()
    _until(lambda: bool(delivered.of("codebuild_state")))
    relay.stop()

    [event] = delivered.of("codebuild_state")
    assert event["detail"]["build-status"] == "STOPPED"
