"""Builders the strict-layer tests share: a fresh layer on its own clients (:class:`Strict`),
load balancers, rules, target groups and services under fresh names, and how a refusal
reads. The fixtures are in conftest.py beside this file.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.strict import ManualClock, StrictAws
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import REGION, SESSION

HOST = "feature.preview.example.com"
PORT = 8080
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
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


def plain_of() -> ClientFactory:
    return ClientFactory(REGION, session=SESSION)


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
