"""The strict-AWS layer (chalicelib/local/strict.py): for each rule, moto alone lets the
call through (so a defect would pass unseen), and the layer answers as AWS does. (The
host-header length is the exception: moto 5.2 refuses it itself; the layer answers the
same, before moto.)

One moto and one base infrastructure (chalicelib/local/bootstrap.py) serve the whole module
(creating it costs seconds); each test makes its own load balancer, target groups and
services under fresh names. ``plain`` is moto without the layer; ``strict(**rules)`` a
fresh ClientFactory on the same moto with its own layer and manual clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.aws.clients import ClientFactory
from chalicelib.infra import BaseInfrastructure
from chalicelib.local.bootstrap import create_base_infrastructure
from chalicelib.local.strict import ManualClock, StrictAws
from tests.conftest import APP, DOMAIN, REGION
from tests.integration.faults import FaultInjector

HOST = "feature.preview.example.com"
PORT = 8080
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SESSION = botocore.session.get_session()  # models load once for the module, not per factory
_names = itertools.count(1)


def fresh(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


class Strict:
    """A ClientFactory with its own strict layer and the clock of its windows."""

    def __init__(self, **rules: Any) -> None:
        self.clock = ManualClock()
        config = rules.pop("config", Config())
        self.clients = ClientFactory(REGION, config=config, session=SESSION)
        self.layer = StrictAws(clock=self.clock.now, **rules).install(self.clients)

    def client(self, service: str) -> Any:
        return self.clients.client(service)


@pytest.fixture(scope="module")
def base() -> Iterator[BaseInfrastructure]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in CREDENTIALS.items():
            env.setenv(key, value)
        with mock_aws():
            clients = ClientFactory(REGION, session=SESSION)
            yield create_base_infrastructure(
                clients, app_name=APP, preview_domain=DOMAIN, region=REGION
            )


@pytest.fixture
def plain(base: BaseInfrastructure) -> ClientFactory:
    return plain_of()


@pytest.fixture
def strict(base: BaseInfrastructure) -> Callable[..., Strict]:
    return Strict


@pytest.fixture
def listener(plain: ClientFactory, base: BaseInfrastructure) -> str:
    """The listener of a load balancer of this test's own, in the base network."""
    return new_listener(plain, base)


def new_listener(clients: Any, base: BaseInfrastructure, security_group: str | None = None) -> str:
    elbv2 = clients.client("elbv2")
    template = elbv2.describe_load_balancers(LoadBalancerArns=[balancer_of(clients, base)])
    model = template["LoadBalancers"][0]
    balancer = elbv2.create_load_balancer(
        Name=fresh("alb"),
        Subnets=[zone["SubnetId"] for zone in model["AvailabilityZones"]],
        SecurityGroups=[security_group] if security_group else model["SecurityGroups"],
        Type="application",
    )["LoadBalancers"][0]["LoadBalancerArn"]
    not_found = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
    arn: str = elbv2.create_listener(
        LoadBalancerArn=balancer, Protocol="HTTP", Port=80, DefaultActions=[not_found]
    )["Listeners"][0]["ListenerArn"]
    return arn


def target_group(clients: Any, base: BaseInfrastructure, port: int = PORT) -> str:
    arn: str = clients.client("elbv2").create_target_group(
        Name=fresh("tg"), Protocol="HTTP", Port=port, VpcId=base.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    return arn


def rule(
    clients: Any, listener: str, priority: int, group: str, host: str = HOST
) -> dict[str, Any]:
    answer: dict[str, Any] = clients.client("elbv2").create_rule(
        ListenerArn=listener,
        Priority=priority,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    return answer


def service(
    clients: Any,
    base: BaseInfrastructure,
    name: str,
    group: str,
    *,
    groups: list[str] | None = None,
    port: int = PORT,
) -> dict[str, Any]:
    ecs = clients.client("ecs")
    definition = ecs.register_task_definition(
        family=name,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": "app:1", "portMappings": [{"containerPort": port}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    answer: dict[str, Any] = ecs.create_service(
        cluster=base.cluster_name,
        serviceName=name,
        taskDefinition=definition,
        desiredCount=1,
        launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": group, "containerName": "app", "containerPort": port}],
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(base.private_subnet_ids),
                "securityGroups": groups or [base.task_security_group_id],
            }
        },
    )["service"]
    return answer


def refused(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error, meta = exc.value.response["Error"], exc.value.response["ResponseMetadata"]
    return error["Code"], error["Message"], meta["HTTPStatusCode"]


def balancer_of(clients: Any, base: BaseInfrastructure, listener: str | None = None) -> str:
    answer = clients.client("elbv2").describe_listeners(
        ListenerArns=[listener or base.listener_arn]
    )
    return str(answer["Listeners"][0]["LoadBalancerArn"])


# --- the clock ---------------------------------------------------------------------------


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=10.0)
    clock.advance(2.5)
    assert clock.now() == 12.5


# --- rule 1: rules and target groups per load balancer -----------------------------------


def test_moto_alone_lets_a_load_balancer_take_more_rules_than_its_quota(
    plain: ClientFactory, base: BaseInfrastructure, listener: str
) -> None:
    group = target_group(plain, base)
    for priority in (1, 2, 3):
        rule(plain, listener, priority, group, host=f"h{priority}.example.com")


def test_rules_are_counted_per_load_balancer_across_its_listeners(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict(rules_per_load_balancer=2)
    elbv2, balancer = aws.client("elbv2"), balancer_of(aws, base, listener)
    not_found = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
    second = elbv2.create_listener(
        LoadBalancerArn=balancer, Protocol="HTTP", Port=8081, DefaultActions=[not_found]
    )["Listeners"][0]["ListenerArn"]
    group = target_group(aws, base)
    rule(aws, listener, 1, group, host="one.example.com")
    rule(aws, second, 1, group, host="two.example.com")

    with pytest.raises(elbv2.exceptions.TooManyRulesException) as exc:
        rule(aws, listener, 2, group, host="three.example.com")

    message = f"The maximum number of rules on load balancer {balancer} has been reached"
    assert refused(exc) == ("TooManyRules", message, 400)
    assert len(elbv2.describe_rules(ListenerArn=listener)["Rules"]) == 2  # with the default


def test_a_new_target_group_over_the_load_balancer_quota_is_refused(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict(target_groups_per_load_balancer=2)
    first, second, third = (target_group(aws, base) for _ in range(3))
    rule(aws, listener, 1, first, host="one.example.com")
    rule(aws, listener, 2, second, host="two.example.com")
    rule(aws, listener, 3, first, host="again.example.com")  # not a new group: fine

    with pytest.raises(ClientError) as exc:
        rule(aws, listener, 4, third, host="three.example.com")

    code, message, status = refused(exc)
    assert (code, status) == ("TooManyUniqueTargetGroupsPerLoadBalancer", 400)
    assert message.endswith("a load balancer of type 'application': [2]")
    rule_arn = rule(aws, listener, 5, first, host="five.example.com")["Rules"][0]["RuleArn"]
    forward = [{"Type": "forward", "TargetGroupArn": third}]
    with pytest.raises(ClientError) as exc:
        aws.client("elbv2").modify_rule(RuleArn=rule_arn, Actions=forward)
    assert refused(exc)[0] == "TooManyUniqueTargetGroupsPerLoadBalancer"


# --- rule 2: host names of at most 128 characters -------------------------------------------


def long_host(length: int) -> str:
    return "a" * (length - len(".example.com")) + ".example.com"


TOO_LONG = ("ValidationError", "The 'host-header' value is too long; the limit is '128'", 400)


def test_moto_already_refuses_a_host_header_over_128_characters(
    plain: ClientFactory, base: BaseInfrastructure, listener: str
) -> None:
    """moto 5.2 enforces this one itself; the layer answers the same, before moto."""
    with pytest.raises(ClientError) as exc:
        rule(plain, listener, 1, target_group(plain, base), host=long_host(129))
    assert refused(exc) == TOO_LONG


def test_the_layer_refuses_a_host_header_over_128_characters_before_moto_sees_it(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict()
    group = target_group(aws, base)
    created = rule(aws, listener, 1, group, host=long_host(128))["Rules"][0]
    faults = FaultInjector(aws.clients, services=("elbv2",))

    with pytest.raises(ClientError) as exc:
        rule(aws, listener, 2, group, host=long_host(129))
    assert refused(exc) == TOO_LONG
    too_long = [{"Field": "host-header", "Values": ["x" * 125 + ".com"]}]
    with pytest.raises(ClientError) as exc:
        aws.client("elbv2").modify_rule(RuleArn=created["RuleArn"], Conditions=too_long)
    assert refused(exc) == TOO_LONG
    assert faults.calls == ["CreateRule", "ModifyRule"] and faults.attempts == 0


# --- rule 3: CreateService waits for its target group's rule --------------------------------


def test_moto_alone_creates_a_service_whose_target_group_has_no_load_balancer(
    plain: ClientFactory, base: BaseInfrastructure
) -> None:
    service(plain, base, fresh("web"), target_group(plain, base))


def test_create_service_is_refused_until_its_rule_has_propagated(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws, name = strict(rule_propagation_seconds=15), fresh("web")
    group = target_group(aws, base)
    expected = (
        "InvalidParameterException",
        f"The target group with targetGroupArn {group} does not have an associated load balancer.",
        400,
    )
    with pytest.raises(aws.client("ecs").exceptions.InvalidParameterException) as exc:
        service(aws, base, name, group)
    assert refused(exc) == expected

    rule(aws, listener, 1, group)
    aws.clock.advance(14)
    with pytest.raises(ClientError) as exc:
        service(aws, base, name, group)
    assert refused(exc) == expected

    aws.clock.advance(1)
    assert service(aws, base, name, group)["status"] == "ACTIVE"


# --- rule 4: DeleteTargetGroup right after DeleteRule ----------------------------------------


def test_moto_alone_deletes_a_target_group_right_after_its_rule(
    plain: ClientFactory, base: BaseInfrastructure, listener: str
) -> None:
    group = target_group(plain, base)
    created = rule(plain, listener, 1, group)["Rules"][0]
    plain.client("elbv2").delete_rule(RuleArn=created["RuleArn"])
    plain.client("elbv2").delete_target_group(TargetGroupArn=group)


def test_a_target_group_stays_in_use_for_a_while_after_its_rule_is_deleted(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict(target_group_release_seconds=15)
    elbv2 = aws.client("elbv2")
    group = target_group(aws, base)
    created = rule(aws, listener, 1, group)["Rules"][0]
    expected = (
        "ResourceInUse",
        f"Target group '{group}' is currently in use by a listener or a rule",
        400,
    )
    with pytest.raises(elbv2.exceptions.ResourceInUseException) as exc:
        elbv2.delete_target_group(TargetGroupArn=group)
    assert refused(exc) == expected

    elbv2.delete_rule(RuleArn=created["RuleArn"])
    aws.clock.advance(14)
    with pytest.raises(ClientError) as exc:
        elbv2.delete_target_group(TargetGroupArn=group)
    assert refused(exc) == expected

    aws.clock.advance(1)
    elbv2.delete_target_group(TargetGroupArn=group)


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


def plain_of() -> ClientFactory:
    return ClientFactory(REGION, session=SESSION)


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
