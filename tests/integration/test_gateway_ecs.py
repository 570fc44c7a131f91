"""The ECS gateway against moto: task definition revisions and preview services."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.ecs import Containers
from chalicelib.aws.errors import AwsError, NotFound
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, REGION, strict_clock_of

FAMILY = f"{APP}-feature-a"
SERVICE = f"{APP}-feature-a_1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:sha-1"
TAGS = {
    "branchenv:managed": "true",
    "branchenv:app": APP,
    "branchenv:env": "feature-a",
    "branchenv:branch": "feature-a",
}


def _ecs_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _task_definition_request(
    infra: BaseInfrastructure, family: str = FAMILY, image: str = IMAGE, **tags: str
) -> dict[str, Any]:
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": infra.execution_role_arn,
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "BRANCH", "value": "feature-a"}],
            }
        ],
        "tags": _ecs_tags(tags or TAGS),
    }


def _service_request(
    infra: BaseInfrastructure, task_definition_arn: str, name: str = SERVICE, **tags: str
) -> dict[str, Any]:
    return {
        "serviceName": name,
        "taskDefinition": task_definition_arn,
        "desiredCount": 1,
        "capacityProviderStrategy": [
            {"capacityProvider": "FARGATE", "base": 1, "weight": 0},
            {"capacityProvider": "FARGATE_SPOT", "weight": 1},
        ],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(infra.private_subnet_ids),
                "securityGroups": [infra.task_security_group_id],
                "assignPublicIp": "DISABLED",
            }
        },
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        "tags": _ecs_tags(tags or TAGS),
    }


@pytest.fixture
def ecs(infra: BaseInfrastructure, clients: ClientFactory) -> Containers:
    return Containers(clients.client("ecs"), infra.cluster_name)


# --- task definitions ------------------------------------------------------------------


def test_register_task_definition_returns_image_environment_and_tags(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    definition = ecs.register_task_definition(_task_definition_request(infra))

    assert (definition.family, definition.revision) == (FAMILY, 1)
    assert definition.image == IMAGE
    assert definition.environment == {"BRANCH": "feature-a"}
    assert definition.tags == TAGS


def test_register_an_invalid_task_definition_is_an_aws_error(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    request = _task_definition_request(infra)
    del request["memory"]  # neither the task nor its container says how much memory

    with pytest.raises(AwsError) as exc:
        ecs.register_task_definition(request)

    assert exc.value.code == "ClientException"


def test_find_task_definition_returns_the_latest_revision(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    ecs.register_task_definition(_task_definition_request(infra))
    latest = ecs.register_task_definition(_task_definition_request(infra, image=IMAGE + "b"))

    assert ecs.find_task_definition(FAMILY) == latest


def test_find_task_definition_of_an_unknown_family_is_none(ecs: Containers) -> None:
    assert ecs.find_task_definition(FAMILY) is None


def test_find_task_definition_skips_a_deregistered_latest_revision(
    ecs: Containers, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    first = ecs.register_task_definition(_task_definition_request(infra))
    second = ecs.register_task_definition(_task_definition_request(infra, image=IMAGE + "b"))
    clients.client("ecs").deregister_task_definition(taskDefinition=second.arn)

    assert ecs.find_task_definition(FAMILY) == first


def test_find_task_definition_when_every_revision_is_deregistered_is_none(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    ecs.register_task_definition(_task_definition_request(infra))
    ecs.deregister_task_definitions(FAMILY)

    assert ecs.find_task_definition(FAMILY) is None


def test_deregister_task_definitions_takes_every_revision_of_exactly_that_family(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    revisions = [ecs.register_task_definition(_task_definition_request(infra)) for _ in range(3)]
    longer = ecs.register_task_definition(_task_definition_request(infra, family=FAMILY + "-2"))

    deregistered = ecs.deregister_task_definitions(FAMILY)

    assert sorted(deregistered) == sorted(r.arn for r in revisions)
    assert ecs.find_task_definition(FAMILY + "-2") == longer


def test_deregister_task_definitions_twice_finds_nothing_more(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    ecs.register_task_definition(_task_definition_request(infra))
    ecs.deregister_task_definitions(FAMILY)

    assert ecs.deregister_task_definitions(FAMILY) == []


def test_list_managed_task_definitions_skips_untagged_and_inactive(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    ours = ecs.register_task_definition(_task_definition_request(infra))
    ecs.register_task_definition(_task_definition_request(infra, family="lookalike", x="y"))
    gone = ecs.register_task_definition(_task_definition_request(infra, family=FAMILY + "-old"))
    ecs.deregister_task_definitions(gone.family)

    assert ecs.list_managed_task_definitions(APP) == [ours]


# --- services --------------------------------------------------------------------------


def test_create_service_returns_it_with_tags(ecs: Containers, infra: BaseInfrastructure) -> None:
    definition = ecs.register_task_definition(_task_definition_request(infra))

    service = ecs.create_service(_service_request(infra, definition.arn))

    assert (service.name, service.status, service.desired_count) == (SERVICE, "ACTIVE", 1)
    assert service.task_definition_arn == definition.arn
    assert service.tags == TAGS


def test_find_service_reports_the_primary_deployment(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    # moto: the deployment stays IN_PROGRESS (unless MOTO_ECS_SERVICE_RUNNING is set) and
    # no service events are ever recorded.
    definition = ecs.register_task_definition(_task_definition_request(infra))
    ecs.create_service(_service_request(infra, definition.arn))

    service = ecs.find_service(SERVICE)

    assert service is not None
    assert service.rollout_state == "IN_PROGRESS"
    assert service.rollout_reason is not None
    assert service.events == ()


def test_find_service_that_never_existed_is_none(ecs: Containers) -> None:
    assert ecs.find_service(SERVICE) is None


def test_find_service_in_an_unknown_cluster_is_an_aws_error(clients: ClientFactory) -> None:
    ecs = Containers(clients.client("ecs"), "no-such-cluster")

    with pytest.raises(AwsError) as exc:
        ecs.find_service(SERVICE)

    assert exc.value.code == "ClusterNotFoundException"


def test_update_service_changes_revision_and_count(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    first = ecs.register_task_definition(_task_definition_request(infra))
    ecs.create_service(_service_request(infra, first.arn))
    second = ecs.register_task_definition(_task_definition_request(infra, image=IMAGE + "b"))

    service = ecs.update_service(SERVICE, task_definition_arn=second.arn, desired_count=0)

    assert (service.task_definition_arn, service.desired_count) == (second.arn, 0)
    assert service.tags == TAGS


def test_update_service_that_does_not_exist_is_not_found(ecs: Containers) -> None:
    with pytest.raises(NotFound) as exc:
        ecs.update_service(SERVICE, desired_count=0)

    assert exc.value.code == "ServiceNotFoundException"


def test_a_deleted_service_drains_then_is_inactive(
    ecs: Containers, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    # ECS keeps a deleted service DRAINING while its tasks stop (moto jumps to INACTIVE;
    # the strict layer plays ECS, see chalicelib/local/strict.py).
    definition = ecs.register_task_definition(_task_definition_request(infra))
    ecs.create_service(_service_request(infra, definition.arn))

    ecs.delete_service(SERVICE)

    draining = ecs.find_service(SERVICE)
    clock = strict_clock_of(clients)
    assert clock is not None
    clock.advance(301)
    gone = ecs.find_service(SERVICE)
    assert draining is not None and draining.status == "DRAINING"
    assert gone is not None and gone.status == "INACTIVE"


def test_delete_service_that_never_existed_is_not_an_error(ecs: Containers) -> None:
    ecs.delete_service(SERVICE)

    assert ecs.find_service(SERVICE) is None


def test_delete_service_already_inactive_is_not_an_error() -> None:
    # moto deletes an INACTIVE service again without complaint; ECS answers
    # ServiceNotActiveException, played here by the Stubber.
    client = boto3.client("ecs", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "delete_service", service_error_code="ServiceNotActiveException", http_status_code=400
    )
    stubber.activate()

    Containers(client, APP).delete_service(SERVICE)

    stubber.assert_no_pending_responses()


def test_list_managed_services_skips_untagged_lookalikes_and_deleted_ones(
    ecs: Containers, infra: BaseInfrastructure
) -> None:
    definition = ecs.register_task_definition(_task_definition_request(infra))
    ours = [
        ecs.create_service(_service_request(infra, definition.arn, name=f"{APP}-env-{n}_1"))
        for n in range(12)  # two DescribeServices chunks
    ]
    ecs.create_service(_service_request(infra, definition.arn, name=f"{APP}-lookalike_1", x="y"))
    ecs.create_service(_service_request(infra, definition.arn, name=f"{APP}-gone_1"))
    ecs.delete_service(f"{APP}-gone_1")

    found = ecs.list_managed_services(APP)

    assert sorted(s.name for s in found) == sorted(s.name for s in ours)
