"""The ELBv2 gateway against moto: preview target groups and host-header listener rules."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.elbv2 import LoadBalancing, PriorityInUse, TargetGroup
from chalicelib.aws.errors import Conflict, NotFound
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, DOMAIN, REGION

NAME = "be-feature-a-1234abcd"
HOST = f"feature-a.{DOMAIN}"
TAGS = {
    "branchenv:managed": "true",
    "branchenv:app": APP,
    "branchenv:env": "feature-a",
    "branchenv:branch": "feature-a",
}


@pytest.fixture
def elb(clients: ClientFactory) -> LoadBalancing:
    return LoadBalancing(clients.client("elbv2"))


def _group(
    elb: LoadBalancing, infra: BaseInfrastructure, name: str = NAME, **tags: str
) -> TargetGroup:
    return elb.create_target_group(
        name, vpc_id=infra.vpc_id, port=8080, health_check_path="/health", tags=tags or TAGS
    )


def test_create_target_group_for_ip_targets_that_drain_fast(
    elb: LoadBalancing, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    group = _group(elb, infra)

    client = clients.client("elbv2")
    raw = client.describe_target_groups(Names=[NAME])["TargetGroups"][0]
    attributes = client.describe_target_group_attributes(TargetGroupArn=group.arn)["Attributes"]
    assert raw["TargetType"] == "ip"
    assert raw["HealthCheckPath"] == "/health"
    assert raw["Matcher"] == {"HttpCode": "200-399"}
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "10"} in attributes


def test_create_target_group_with_a_taken_name_is_a_conflict(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    _group(elb, infra)

    with pytest.raises(Conflict) as exc:
        elb.create_target_group(
            NAME, vpc_id=infra.vpc_id, port=9090, health_check_path="/", tags=TAGS
        )

    assert exc.value.code == "DuplicateTargetGroupName"


def test_find_target_group_returns_it_with_tags(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    created = _group(elb, infra)

    assert elb.find_target_group(NAME) == TargetGroup(
        created.arn, NAME, TAGS, health_check_path="/health"
    )


def test_find_target_group_that_does_not_exist_is_none(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    assert elb.find_target_group(NAME) is None


def test_delete_target_group_removes_it(elb: LoadBalancing, infra: BaseInfrastructure) -> None:
    group = _group(elb, infra)

    elb.delete_target_group(group.arn)

    assert elb.find_target_group(NAME) is None


def test_delete_target_group_twice_is_not_an_error(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    elb.delete_target_group(group.arn)

    elb.delete_target_group(group.arn)

    assert elb.find_target_group(NAME) is None


def test_delete_target_group_still_used_by_a_rule_is_a_conflict(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    elb.create_rule(
        infra.listener_arn, priority=7, host=HOST, target_group_arn=group.arn, tags=TAGS
    )

    with pytest.raises(Conflict) as exc:
        elb.delete_target_group(group.arn)

    assert exc.value.code == "ResourceInUse"


def test_create_rule_forwards_the_host_to_the_target_group(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)

    rule = elb.create_rule(
        infra.listener_arn, priority=7, host=HOST, target_group_arn=group.arn, tags=TAGS
    )

    assert (rule.priority, rule.hosts, rule.target_group_arns) == (7, (HOST,), (group.arn,))
    assert elb.find_rule(infra.listener_arn, HOST) == rule


def test_create_rule_on_a_taken_priority_raises_priority_in_use(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    elb.create_rule(
        infra.listener_arn, priority=7, host=HOST, target_group_arn=group.arn, tags=TAGS
    )

    with pytest.raises(PriorityInUse) as exc:
        elb.create_rule(
            infra.listener_arn,
            priority=7,
            host=f"other.{DOMAIN}",
            target_group_arn=group.arn,
            tags=TAGS,
        )

    assert exc.value.code == "PriorityInUse"


def test_find_rule_for_an_unknown_host_is_none(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    elb.create_rule(
        infra.listener_arn, priority=7, host=HOST, target_group_arn=group.arn, tags=TAGS
    )

    assert elb.find_rule(infra.listener_arn, f"other.{DOMAIN}") is None


def test_find_rule_on_an_unknown_listener_is_not_found(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    missing = infra.listener_arn[:-4] + "0000"

    with pytest.raises(NotFound) as exc:
        elb.find_rule(missing, HOST)

    assert exc.value.code == "ListenerNotFound"


def test_find_rule_pages_through_many_rules(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    elb = LoadBalancing(clients.client("elbv2"), rules_page_size=10)
    group = _group(elb, infra)
    for n in range(1, 26):
        elb.create_rule(
            infra.listener_arn,
            priority=n,
            host=f"env-{n}.{DOMAIN}",
            target_group_arn=group.arn,
            tags=TAGS,
        )

    rule = elb.find_rule(infra.listener_arn, f"env-25.{DOMAIN}")

    assert rule is not None
    assert rule.priority == 25
    assert elb.used_priorities(infra.listener_arn) == set(range(1, 26))


def test_delete_rule_removes_it(elb: LoadBalancing, infra: BaseInfrastructure) -> None:
    group = _group(elb, infra)
    rule = elb.create_rule(
        infra.listener_arn, priority=7, host=HOST, target_group_arn=group.arn, tags=TAGS
    )

    elb.delete_rule(rule.arn)

    assert elb.find_rule(infra.listener_arn, HOST) is None


def test_delete_rule_already_gone_is_not_an_error() -> None:
    # moto's DeleteRule succeeds silently for an unknown rule; ELB answers RuleNotFound.
    client = boto3.client("elbv2", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error("delete_rule", service_error_code="RuleNotFound", http_status_code=400)
    stubber.activate()

    LoadBalancing(client).delete_rule("arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/x")

    stubber.assert_no_pending_responses()


def test_used_priorities_lists_every_rule_but_the_default(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    for priority in (3, 9):
        elb.create_rule(
            infra.listener_arn,
            priority=priority,
            host=f"env-{priority}.{DOMAIN}",
            target_group_arn=group.arn,
            tags=TAGS,
        )

    assert elb.used_priorities(infra.listener_arn) == {3, 9}


def test_healthy_targets_counts_registered_targets(
    elb: LoadBalancing, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    group = _group(elb, infra)
    clients.client("elbv2").register_targets(
        TargetGroupArn=group.arn, Targets=[{"Id": "10.0.10.5"}, {"Id": "10.0.11.6"}]
    )

    assert elb.healthy_targets(group.arn) == 2


def test_healthy_targets_of_an_empty_group_is_zero(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)

    assert elb.healthy_targets(group.arn) == 0


def test_healthy_targets_of_a_deleted_group_is_not_found(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    elb.delete_target_group(group.arn)

    with pytest.raises(NotFound) as exc:
        elb.healthy_targets(group.arn)

    assert exc.value.code == "TargetGroupNotFound"


def test_list_managed_target_groups_skips_untagged_and_other_apps(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    ours = [_group(elb, infra, f"be-env-{n}") for n in range(25)]  # two DescribeTags chunks
    _group(elb, infra, "be-lookalike", unrelated="yes")
    _group(elb, infra, "be-other-app", **{**TAGS, "branchenv:app": "other"})

    found = elb.list_managed_target_groups(APP)

    assert sorted(g.arn for g in found) == sorted(g.arn for g in ours)


def test_list_managed_rules_skips_rules_without_our_tags(
    elb: LoadBalancing, infra: BaseInfrastructure
) -> None:
    group = _group(elb, infra)
    ours = elb.create_rule(
        infra.listener_arn, priority=1, host=HOST, target_group_arn=group.arn, tags=TAGS
    )
    elb.create_rule(
        infra.listener_arn,
        priority=2,
        host=f"lookalike.{DOMAIN}",
        target_group_arn=group.arn,
        tags={"team": "qa"},
    )

    assert elb.list_managed_rules(infra.listener_arn, APP) == [ours]
