"""The local event relay plays ECS and CodeBuild against moto and delivers AWS-shaped events."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3

from chalicelib.aws.clients import ClientFactory
from chalicelib.infra import BaseInfrastructure
from chalicelib.local.relay import BuildRecorder, EventRelay, stand_in_address
from tests.conftest import APP, REGION

SHA = "0123456789abcdef0123456789abcdef01234567"


class Delivered:
    """Collects what the relay delivers, as the Chalice handlers would receive it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, handler: str, event: dict[str, Any]) -> bool:
        self.events.append((handler, event))
        return True

    def of(self, handler: str) -> list[dict[str, Any]]:
        return [event for name, event in self.events if name == handler]


def _relay(
    clients: ClientFactory, infra: BaseInfrastructure, delivered: Delivered, recorder: BuildRecorder
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
    )


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)


def _service(clients: ClientFactory, infra: BaseInfrastructure, app: str) -> tuple[str, str]:
    elbv2 = clients.client("elbv2")
    group = elbv2.create_target_group(
        Name=f"be-{app}-web", Protocol="HTTP", Port=8080, VpcId=infra.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    ecs = clients.client("ecs")
    task = ecs.register_task_definition(
        family=f"{app}-web",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(
        cluster=infra.cluster_name,
        serviceName=f"{app}-web_1",
        taskDefinition=task,
        desiredCount=1,
        loadBalancers=[{"targetGroupArn": group, "containerName": "app", "containerPort": 8080}],
        tags=[
            {"key": "branchenv:managed", "value": "true"},
            {"key": "branchenv:app", "value": app},
        ],
    )["service"]["serviceArn"]
    return service, group


def test_new_service_gets_a_healthy_target_and_a_deployment_completed_event(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    service_arn, group_arn = _service(clients, infra, APP)
    relay = _relay(clients, infra, delivered, BuildRecorder())

    relay.start()
    _until(lambda: bool(delivered.of("ecs_deployment")))
    relay.stop()

    health = clients.client("elbv2").describe_target_health(TargetGroupArn=group_arn)
    [event] = delivered.of("ecs_deployment")
    assert [
        (t["Target"]["Id"], t["TargetHealth"]["State"]) for t in health["TargetHealthDescriptions"]
    ] == [(stand_in_address(service_arn), "healthy")]
    assert event["detail-type"] == "ECS Deployment State Change"
    assert event["detail"]["eventName"] == "SERVICE_DEPLOYMENT_COMPLETED"
    assert event["resources"] == [service_arn]


def test_services_of_another_installation_are_left_alone(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered = Delivered()
    _service(clients, infra, "other")
    relay = _relay(clients, infra, delivered, BuildRecorder())

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
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered, recorder = Delivered(), BuildRecorder()
    relay = _relay(clients, infra, delivered, recorder)
    build_arn = _start_build(infra, recorder, "branch-feature-login")

    relay.start()
    _until(lambda: bool(delivered.of("codebuild_state")))
    relay.stop()

    images = clients.client("ecr").describe_images(repositoryName=infra.ecr_repository_name)
    tags = {tag for image in images["imageDetails"] for tag in image.get("imageTags", [])}
    [event] = delivered.of("codebuild_state")
    assert tags == {SHA, "branch-feature-login"}
    assert event["detail"]["build-status"] == "SUCCEEDED"
    assert event["detail"]["build-id"] == build_arn
    assert len(delivered.of("ecr_push")) == 2


def test_fail_build_branch_gets_a_failed_build_and_no_image(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered, recorder = Delivered(), BuildRecorder()
    relay = _relay(clients, infra, delivered, recorder)
    _start_build(infra, recorder, "branch-feature-broken--fail-build")

    relay.start()
    _until(lambda: bool(delivered.of("codebuild_state")))
    relay.stop()

    images = clients.client("ecr").describe_images(repositoryName=infra.ecr_repository_name)
    [event] = delivered.of("codebuild_state")
    assert event["detail"]["build-status"] == "FAILED"
    assert images["imageDetails"] == []


def test_stopped_build_is_reported_stopped(
    clients: ClientFactory, infra: BaseInfrastructure
) -> None:
    delivered, recorder = Delivered(), BuildRecorder()
    relay = _relay(clients, infra, delivered, recorder)
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
