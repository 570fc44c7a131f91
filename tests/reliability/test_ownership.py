"""Ownership: teardown and the reaper only touch what carries ``branchenv:managed`` and the
environment's own tags (or, for DNS, its owner TXT record). A hand-made resource named
like a preview survives the branch's deploy, its delete and a reaper sweep."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.environments import Status
from tests.integration.harness import World, sha_of
from tests.reliability.support import FakeGitHub, assert_gone, deployment_completed, reap

BRANCH = "feature/owned"
HAND_MADE_TAGS = [{"key": "team", "value": "platform"}]


def register_hand_made_revision(world: World, family: str) -> str:
    ecs = world.clients.client("ecs")
    answer = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "web", "image": "nginx:1.27", "memory": 128}],
        tags=HAND_MADE_TAGS,
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def create_hand_made_service(world: World, name: str) -> dict[str, Any]:
    ecs = world.clients.client("ecs")
    revision = register_hand_made_revision(world, "hand-made")
    answer = ecs.create_service(
        cluster=world.settings.cluster, serviceName=name, taskDefinition=revision, desiredCount=1
    )
    return dict(answer["service"])


def describe_service(world: World, name: str) -> dict[str, Any]:
    ecs = world.clients.client("ecs")
    [service] = ecs.describe_services(cluster=world.settings.cluster, services=[name])["services"]
    return dict(service)


def create_hand_made_target_group(world: World, name: str, tags: list[dict[str, str]]) -> str:
    elbv2 = world.clients.client("elbv2")
    answer = elbv2.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=8080,
        VpcId=world.settings.vpc_id,
        TargetType="ip",
        Tags=tags,
    )
    return str(answer["TargetGroups"][0]["TargetGroupArn"])


def create_hand_made_record(world: World, host: str) -> None:
    world.clients.client("route53").change_resource_record_sets(
        HostedZoneId=world.settings.hosted_zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": host,
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.10"}],
                    },
                }
            ]
        },
    )


def record_exists(world: World, host: str) -> bool:
    answer = world.clients.client("route53").list_resource_record_sets(
        HostedZoneId=world.settings.hosted_zone_id, StartRecordName=host, StartRecordType="A"
    )
    return any(
        r["Name"].rstrip(".") == host and r["Type"] == "A" for r in answer["ResourceRecordSets"]
    )


def target_group_exists(world: World, arn: str) -> bool:
    groups = world.clients.client("elbv2").describe_target_groups()["TargetGroups"]
    return any(group["TargetGroupArn"] == arn for group in groups)


def delete_and_reap(world: World, github: FakeGitHub) -> None:
    github.remove(BRANCH)
    world.deliver(world.delete(BRANCH))
    report = reap(world, github)
    assert report.errors == [], report.errors


def test_hand_made_lookalikes_stop_the_deploy_and_survive_delete_and_reaper(
    world: World, github: FakeGitHub
) -> None:
    names = world.names(BRANCH)
    create_hand_made_record(world, names.host)
    group = create_hand_made_target_group(
        world, names.target_group, [{"Key": "team", "Value": "platform"}]
    )
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "remove it or rename the branch" in env.reason
    delete_and_reap(world, github)
    assert record_exists(world, names.host)
    assert target_group_exists(world, group)
    assert_gone(world, BRANCH)


def record_values(world: World, host: str) -> list[str]:
    answer = world.clients.client("route53").list_resource_record_sets(
        HostedZoneId=world.settings.hosted_zone_id, StartRecordName=host, StartRecordType="A"
    )
    return [
        value["Value"]
        for record in answer["ResourceRecordSets"]
        if record["Name"].rstrip(".") == host
        for value in record.get("ResourceRecords", [])
    ]


def test_a_hand_made_dns_record_at_the_preview_host_is_never_overwritten(
    world: World, github: FakeGitHub
) -> None:
    names = world.names(BRANCH)
    create_hand_made_record(world, names.host)
    world.push_image(sha_of(1))
    github.set_head(BRANCH, sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "branchenv did not make it" in env.reason
    assert record_values(world, names.host) == ["192.0.2.10"]
    delete_and_reap(world, github)
    assert record_values(world, names.host) == ["192.0.2.10"]
    assert_gone(world, BRANCH)


def test_a_record_made_at_the_host_while_converge_runs_is_never_overwritten(
    world: World, github: FakeGitHub
) -> None:
    """Someone's record lands between converge's look (nothing at the host) and its write:
    the write is a CREATE, which Route53 refuses (the strict layer plays it), so converge
    looks again and stops the preview instead of overwriting the record."""
    names = world.names(BRANCH)
    route53 = world.clients.client("route53")
    raced: list[bool] = []

    def someone_else_first(**_: Any) -> None:
        if not raced:
            raced.append(True)
            create_hand_made_record(world, names.host)

    route53.meta.events.register("before-call.route53.ChangeResourceRecordSets", someone_else_first)
    world.push_image(sha_of(1))
    github.set_head(BRANCH, sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    route53.meta.events.unregister(
        "before-call.route53.ChangeResourceRecordSets", someone_else_first
    )
    env = world.env(BRANCH)
    assert raced == [True]
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "branchenv did not make it" in env.reason
    assert record_values(world, names.host) == ["192.0.2.10"]
    delete_and_reap(world, github)
    assert record_values(world, names.host) == ["192.0.2.10"]
    assert_gone(world, BRANCH)


def test_a_hand_made_service_named_like_the_preview_is_never_changed(
    world: World, github: FakeGitHub
) -> None:
    names = world.names(BRANCH)
    before = create_hand_made_service(world, names.service(1))
    world.push_image(sha_of(1))
    github.set_head(BRANCH, sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "remove it or rename the branch" in env.reason
    delete_and_reap(world, github)
    after = describe_service(world, names.service(1))
    assert after["status"] == "ACTIVE"
    assert after["taskDefinition"] == before["taskDefinition"]
    assert after["desiredCount"] == 1
    assert_gone(world, BRANCH)


def test_a_hand_made_revision_in_the_preview_family_survives_the_teardown(
    world: World, github: FakeGitHub
) -> None:
    names = world.names(BRANCH)
    world.push_image(sha_of(1))
    github.set_head(BRANCH, sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1)))
    deployment_completed(world, BRANCH)
    hand_made = register_hand_made_revision(world, names.task_family)

    delete_and_reap(world, github)

    ecs = world.clients.client("ecs")
    described = ecs.describe_task_definition(taskDefinition=hand_made)["taskDefinition"]
    assert described["status"] == "ACTIVE"
    assert_gone(world, BRANCH)
    assert world.leftovers() == []


def test_another_installations_target_group_named_like_ours_survives(
    world: World, github: FakeGitHub
) -> None:
    names = world.names(BRANCH)
    tags = [{"Key": k, "Value": v} for k, v in names.tags().items()]
    foreign = [t if t["Key"] != "branchenv:app" else {**t, "Value": "other-app"} for t in tags]
    group = create_hand_made_target_group(world, names.target_group, foreign)

    world.deliver(world.create(BRANCH))
    delete_and_reap(world, github)

    assert target_group_exists(world, group)
    assert_gone(world, BRANCH)
