"""The strict-AWS layer (chalicelib/local/strict.py), rules 5-7 (ECS draining, Route53's
request rate, security groups on the path load balancer → task) and its own reads: for
each rule, moto alone lets the call through (so a defect would pass unseen), and the layer
answers as AWS does. Fixtures and builders: conftest.py and support.py beside this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.strict import ManualClock
from chalicelib.tools.infra import BaseInfrastructure
from tests.integration.faults import FaultInjector
from tests.integration.strict.support import (
    PORT,
    Strict,
    fresh,
    new_listener,
    plain_of,
    refused,
    rule,
    service,
    target_group,
)

# --- rule 5: a deleted service stays DRAINING ---------------------------------------------------


def status(clients: Any, base: BaseInfrastructure, name: str) -> str:
    answer = clients.client("ecs").describe_services(cluster=base.cluster_name, services=[name])
    return str(answer["services"][0]["status"])


def test_moto_alone_recreates_a_deleted_service_at_once(
    plain: ClientFactory, base: BaseInfrastructure
) -> None:
    group, name = target_group(plain, base), fresh("web")
    service(plain, base, name, group)
    plain.client("ecs").delete_service(cluster=base.cluster_name, service=name, force=True)
    assert status(plain, base, name) == "INACTIVE"
    service(plain, base, name, group)


def test_a_deleted_service_drains_and_its_name_cannot_be_reused_meanwhile(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws, name = strict(draining_seconds=300), fresh("web")
    ecs, cluster = aws.client("ecs"), base.cluster_name
    group = target_group(aws, base)
    rule(aws, listener, 1, group)
    aws.clock.advance(15)
    arn = service(aws, base, name, group)["serviceArn"]
    ecs.delete_service(cluster=cluster, service=name, force=True)

    assert status(aws, base, name) == "DRAINING" and status(plain_of(), base, name) == "INACTIVE"
    assert arn not in ecs.list_services(cluster=cluster)["serviceArns"]
    with pytest.raises(ClientError) as exc:
        service(aws, base, name, group)
    message = "Creation of service was not idempotent."
    assert refused(exc) == ("InvalidParameterException", message, 400)

    aws.clock.advance(300)
    assert status(aws, base, name) == "INACTIVE"
    assert service(aws, base, name, group)["status"] == "ACTIVE"
    assert status(aws, base, name) == "ACTIVE"
    assert arn in ecs.list_services(cluster=cluster)["serviceArns"]


def test_a_deleted_service_cannot_be_updated_while_moto_alone_updates_it(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws, name = strict(draining_seconds=300), fresh("web")
    ecs, cluster = aws.client("ecs"), base.cluster_name
    group = target_group(aws, base)
    rule(aws, listener, 1, group)
    aws.clock.advance(15)
    service(aws, base, name, group)
    ecs.delete_service(cluster=cluster, service=name, force=True)

    plain_of().client("ecs").update_service(cluster=cluster, service=name, desiredCount=0)
    with pytest.raises(ClientError) as exc:
        ecs.update_service(cluster=cluster, service=name, desiredCount=1)

    assert refused(exc) == ("ServiceNotActiveException", "Service was not ACTIVE.", 400)


def primary(answer: dict[str, Any]) -> str:
    return str(next(d["id"] for d in answer["deployments"] if d["status"] == "PRIMARY"))


@pytest.mark.parametrize("layer", ["moto alone", "strict"])
def test_a_new_task_definition_starts_a_deployment_with_its_own_id(
    layer: str, strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict()
    clients = plain_of() if layer == "moto alone" else aws
    ecs, cluster, name = clients.client("ecs"), base.cluster_name, fresh("web")
    group = target_group(aws, base)
    rule(aws, listener, 1, group)
    aws.clock.advance(15)
    created = service(clients, base, name, group)
    revision = ecs.register_task_definition(
        family=name, containerDefinitions=[{"name": "app", "image": "app:2", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]

    updated = ecs.update_service(cluster=cluster, service=name, taskDefinition=revision)
    scaled = ecs.update_service(cluster=cluster, service=name, desiredCount=2)

    new_deployment = primary(updated["service"]) != primary(created)
    assert new_deployment == (layer == "strict")  # moto alone keeps the old id
    assert primary(scaled["service"]) == primary(updated["service"])  # a count is no rollout


# --- rule 6: Route53 throttles above its request rate ------------------------------------------


def record_names(clients: Any, zone: str) -> set[str]:
    answer = clients.client("route53").list_resource_record_sets(HostedZoneId=zone)
    return {r["Name"] for r in answer["ResourceRecordSets"]}


def upsert(clients: Any, zone: str, name: str) -> None:
    record = {"Name": name, "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": '"x"'}]}
    clients.client("route53").change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]},
    )


def test_moto_alone_never_throttles_route53(plain: ClientFactory, base: BaseInfrastructure) -> None:
    for _ in range(12):
        upsert(plain, base.hosted_zone_id, f"{fresh('r')}.{base.preview_domain}")


def test_route53_answers_throttling_above_its_rate_and_the_attempt_changes_nothing(
    strict: Callable[..., Strict], base: BaseInfrastructure
) -> None:
    rate_clock = ManualClock()
    once = Config(retries={"mode": "standard", "max_attempts": 1})
    aws = strict(
        route53_requests_per_second=2.0, route53_burst=2.0, rate_clock=rate_clock.now, config=once
    )
    zone, domain = base.hosted_zone_id, base.preview_domain
    upsert(aws, zone, f"first.{domain}")
    upsert(aws, zone, f"second.{domain}")

    with pytest.raises(ClientError) as exc:  # Route53's code is Throttling: not modelled
        upsert(aws, zone, f"throttled.{domain}")
    assert refused(exc) == ("Throttling", "Rate exceeded", 400)
    assert f"throttled.{domain}." not in record_names(plain_of(), zone)

    rate_clock.advance(0.5)  # one token back, at 2 per second
    upsert(aws, zone, f"later.{domain}")
    assert f"later.{domain}." in record_names(plain_of(), zone)


def test_botocore_retries_a_throttled_route53_call_as_it_would_with_aws(
    strict: Callable[..., Strict], base: BaseInfrastructure
) -> None:
    """Standard retry mode backs off (under a second for the first retry) and tries again;
    the bucket's clock moves on when the throttled answer arrives."""
    rate_clock = ManualClock()
    retry = Config(retries={"mode": "standard", "max_attempts": 2})
    aws = strict(
        route53_requests_per_second=1.0, route53_burst=1.0, rate_clock=rate_clock.now, config=retry
    )
    route53 = aws.client("route53")

    def time_passes(response: Any = None, **_: Any) -> None:
        if response and response[0] is not None and response[0].status_code == 400:
            rate_clock.advance(1.0)

    route53.meta.events.register("needs-retry", time_passes)
    route53.list_hosted_zones()
    assert route53.list_hosted_zones()["ResponseMetadata"]["RetryAttempts"] == 1


# --- rule 7: security groups on the path load balancer → task ----------------------------------


def tasks_group(clients: Any, base: BaseInfrastructure, permission: dict[str, Any]) -> str:
    ec2 = clients.client("ec2")
    group: str = ec2.create_security_group(
        GroupName=fresh("tasks"), Description="strict test", VpcId=base.vpc_id
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
    return group


def own_balancer(clients: Any, base: BaseInfrastructure) -> tuple[str, str]:
    """A load balancer with a security group of its own (egress: everything, EC2's default
    for a new group), and its listener."""
    alb_sg: str = clients.client("ec2").create_security_group(
        GroupName=fresh("alb"), Description="strict test", VpcId=base.vpc_id
    )["GroupId"]
    return new_listener(clients, base, security_group=alb_sg), alb_sg


def tcp_from(group: str, port: int) -> dict[str, Any]:
    pair = [{"GroupId": group}]
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": pair}


def health(clients: Any, group: str) -> list[dict[str, Any]]:
    answer = clients.client("elbv2").describe_target_health(TargetGroupArn=group)
    return [d["TargetHealth"] for d in answer["TargetHealthDescriptions"]]


def registered(aws: Strict, base: BaseInfrastructure, listener: str, sg: str, port: int) -> str:
    """A target group on ``port`` behind ``listener``, its service's task in it."""
    group = target_group(aws, base, port=port)
    rule(aws, listener, port, group, host=f"p{port}.example.com")
    aws.clock.advance(15)
    service(aws, base, fresh("web"), group, groups=[sg], port=port)
    target = {"Id": "10.0.10.10", "Port": port}
    aws.client("elbv2").register_targets(TargetGroupArn=group, Targets=[target])
    return group


def test_moto_alone_reports_a_target_healthy_whatever_the_security_groups(
    plain: ClientFactory, strict: Callable[..., Strict], base: BaseInfrastructure
) -> None:
    aws = strict()
    listener, alb_sg = own_balancer(aws, base)
    sg = tasks_group(aws, base, tcp_from(alb_sg, PORT))
    group = registered(aws, base, listener, sg, 3000)
    assert health(plain, group)[0]["State"] == "healthy"


def test_a_target_on_a_port_the_tasks_group_does_not_open_times_out(
    strict: Callable[..., Strict], base: BaseInfrastructure
) -> None:
    aws = strict()
    listener, alb_sg = own_balancer(aws, base)
    sg = tasks_group(aws, base, tcp_from(alb_sg, PORT))
    closed = registered(aws, base, listener, sg, 3000)
    open_ = registered(aws, base, listener, sg, PORT)

    timed_out = {
        "State": "unhealthy",
        "Reason": "Target.Timeout",
        "Description": "Request timed out",
    }
    assert health(aws, closed) == [timed_out]
    assert health(aws, open_)[0]["State"] == "healthy"
    assert aws.layer.port_reachable(open_, PORT) and not aws.layer.port_reachable(closed, 3000)
    assert strict(enforce_security_groups=False).layer.port_reachable(closed, 3000)


def test_a_cidr_covering_the_load_balancer_subnets_opens_the_path(
    strict: Callable[..., Strict], base: BaseInfrastructure
) -> None:
    aws = strict()
    listener = own_balancer(aws, base)[0]
    vpc_wide = {"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 3000}
    sg = tasks_group(aws, base, {**vpc_wide, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]})
    assert aws.layer.port_reachable(registered(aws, base, listener, sg, 3000), 3000)


def test_the_load_balancer_group_must_let_the_port_out(
    strict: Callable[..., Strict], base: BaseInfrastructure
) -> None:
    aws = strict()
    ec2 = aws.client("ec2")
    listener, alb_sg = own_balancer(aws, base)
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.revoke_security_group_egress(GroupId=alb_sg, IpPermissions=[everything])
    sg = tasks_group(aws, base, tcp_from(alb_sg, PORT))
    group = registered(aws, base, listener, sg, PORT)
    assert not aws.layer.port_reachable(group, PORT)

    ec2.authorize_security_group_egress(GroupId=alb_sg, IpPermissions=[tcp_from(sg, PORT)])
    assert aws.layer.port_reachable(group, PORT)


# --- the layer's own reads ---------------------------------------------------------------------


def test_the_layer_reads_are_not_counted_by_fault_injection(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict()
    faults = FaultInjector(aws.clients)
    group = target_group(aws, base)
    faults.reset()
    rule(aws, listener, 1, group)
    with pytest.raises(ClientError):
        service(aws, base, fresh("web"), group)  # refused: the rule is still propagating
    assert faults.calls == ["CreateRule", "RegisterTaskDefinition", "CreateService"]
