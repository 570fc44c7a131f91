"""The leak audit finds what is tagged (or TXT-owned) as ours, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.aws.ecr import Images
from chalicelib.aws.ecs import Containers
from chalicelib.aws.elbv2 import LoadBalancing
from chalicelib.aws.inventory import Inventory
from chalicelib.aws.route53 import Dns
from chalicelib.aws.tagging import TaggedResources
from chalicelib.domain.names import EnvironmentNames, names_for
from chalicelib.domain.resources import ManagedResource, ResourceKind
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, DOMAIN
from tests.integration.images import push_test_image

REPOSITORY = "octo/shop"


@pytest.fixture
def inventory(infra: BaseInfrastructure, clients: ClientFactory) -> Inventory:
    return Inventory(
        app=APP,
        domain=DOMAIN,
        tagged=TaggedResources(clients.client("resourcegroupstaggingapi")),
        dns=Dns(clients.client("route53"), infra.hosted_zone_id),
        load_balancing=LoadBalancing(clients.client("elbv2")),
        containers=Containers(clients.client("ecs"), infra.cluster_name),
        images=Images(clients.client("ecr"), infra.ecr_repository_name),
        store=DynamoEnvironmentStore(clients.client("dynamodb"), infra.table_name),
        listener_arns=[infra.listener_arn],
    )


def _ecs_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _make_environment(
    infra: BaseInfrastructure, clients: ClientFactory, names: EnvironmentNames, *, tagged: bool
) -> list[ManagedResource]:
    """Every kind of resource for ``names``; with ``tagged=False`` a look-alike: the same
    names, no tags and no owner TXT. Returns what the inventory should report."""
    tags = names.tags() if tagged else {"team": "qa"}
    family = names.task_family
    ecs = Containers(clients.client("ecs"), infra.cluster_name)
    elb = LoadBalancing(clients.client("elbv2"))
    definition = ecs.register_task_definition(_task_definition(infra, family, tags))
    group = elb.create_target_group(
        names.target_group, vpc_id=infra.vpc_id, port=8080, health_check_path="/", tags=tags
    )
    rule = elb.create_rule(
        infra.listener_arn,
        priority=_next_priority(elb, infra),
        host=names.host,
        target_group_arn=group.arn,
        tags=tags,
    )
    service = ecs.create_service(_service(infra, names.service(1), definition.arn, tags))
    _dns_alias(infra, clients, names, owned=tagged)
    if not tagged:
        return []
    push_test_image(clients.client("ecr"), infra.ecr_repository_name, names.branch_tag)
    store = DynamoEnvironmentStore(clients.client("dynamodb"), infra.table_name)
    store.claim_priority(infra.listener_arn, rule.priority, names.slug)
    return [
        ManagedResource(ResourceKind.SERVICE, service.arn, names.slug),
        ManagedResource(ResourceKind.TASK_DEFINITION, definition.arn, names.slug),
        ManagedResource(ResourceKind.TARGET_GROUP, group.arn, names.slug),
        ManagedResource(ResourceKind.LISTENER_RULE, rule.arn, names.slug),
        ManagedResource(ResourceKind.DNS_RECORD, names.host, names.slug),
        ManagedResource(ResourceKind.IMAGE_TAG, names.branch_tag, names.slug),
        ManagedResource(
            ResourceKind.PRIORITY_CLAIM, f"{infra.listener_arn}#{rule.priority}", names.slug
        ),
    ]


def _next_priority(elb: LoadBalancing, infra: BaseInfrastructure) -> int:
    return max(elb.used_priorities(infra.listener_arn), default=0) + 1


def _task_definition(
    infra: BaseInfrastructure, family: str, tags: dict[str, str]
) -> dict[str, Any]:
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": infra.execution_role_arn,
        "containerDefinitions": [{"name": "app", "image": "app:latest", "essential": True}],
        "tags": _ecs_tags(tags),
    }


def _service(
    infra: BaseInfrastructure, name: str, definition_arn: str, tags: dict[str, str]
) -> dict[str, Any]:
    return {
        "serviceName": name,
        "taskDefinition": definition_arn,
        "desiredCount": 1,
        "launchType": "FARGATE",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(infra.private_subnet_ids),
                "securityGroups": [infra.task_security_group_id],
            }
        },
        "tags": _ecs_tags(tags),
    }


def _dns_alias(
    infra: BaseInfrastructure, clients: ClientFactory, names: EnvironmentNames, *, owned: bool
) -> None:
    dns = Dns(clients.client("route53"), infra.hosted_zone_id)
    if owned:
        dns.upsert_alias(names.host, infra.alb_dns_name, infra.alb_zone_id, names.dns_owner)
        return
    alias = {
        "Name": names.host,
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": infra.alb_zone_id,
            "DNSName": infra.alb_dns_name,
            "EvaluateTargetHealth": False,
        },
    }
    clients.client("route53").change_resource_record_sets(
        HostedZoneId=infra.hosted_zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": alias}]},
    )


def _sorted(resources: list[ManagedResource]) -> list[ManagedResource]:
    return sorted(resources, key=lambda r: (r.kind, r.identifier))


def test_empty_installation_has_nothing_managed(inventory: Inventory) -> None:
    assert inventory.managed() == []


def test_lists_every_kind_of_tagged_resource_and_skips_look_alikes(
    inventory: Inventory, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    first = _make_environment(
        infra, clients, names_for(APP, REPOSITORY, "feature-a", DOMAIN), tagged=True
    )
    second = _make_environment(
        infra, clients, names_for(APP, REPOSITORY, "Feature/B", DOMAIN), tagged=True
    )
    _make_environment(infra, clients, names_for(APP, REPOSITORY, "lookalike", DOMAIN), tagged=False)

    assert _sorted(inventory.managed()) == _sorted(first + second)


def test_lists_one_environment_on_request(
    inventory: Inventory, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    wanted = names_for(APP, REPOSITORY, "feature-a", DOMAIN)
    expected = _make_environment(infra, clients, wanted, tagged=True)
    _make_environment(infra, clients, names_for(APP, REPOSITORY, "feature-c", DOMAIN), tagged=True)

    assert _sorted(inventory.managed(wanted.slug)) == _sorted(expected)


def test_another_installations_resources_are_not_ours(
    inventory: Inventory, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    other = names_for("other", REPOSITORY, "feature-a", DOMAIN)
    ours = _make_environment(
        infra, clients, names_for(APP, REPOSITORY, "feature-d", DOMAIN), tagged=True
    )
    elb = LoadBalancing(clients.client("elbv2"))
    elb.create_target_group(
        other.target_group, vpc_id=infra.vpc_id, port=8080, health_check_path="/", tags=other.tags()
    )

    assert _sorted(inventory.managed()) == _sorted(ours)
