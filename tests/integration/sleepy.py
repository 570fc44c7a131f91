"""Helpers for the sleep-and-wake tests: a world whose load balancer has a waker, the
load balancer's own side (requests counted in CloudWatch, a request that reaches the
waker), ECS's side of a scale-down, and a reaper sweep later in time.

moto plays none of the load balancer's data plane: ALB publishes ``RequestCount`` per
target group for each minute it routed a request there ("CloudWatch metrics for your
Application Load Balancer"), so the tests publish it as ALB would; and ECS deregisters the
targets of the tasks it stops ("Use load balancing to distribute Amazon ECS service
traffic": a stopped task's target is deregistered and drained), which moto does not, so
:func:`tasks_stopped` does it. Neither changes anything branchenv holds.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.cloudwatch import load_balancer_dimension, target_group_dimension
from chalicelib.domain.messages import WAKE_CAUSE, ConvergeRequest, Queue
from chalicelib.domain.settings import Settings
from chalicelib.handlers.idle import RequestCounts
from chalicelib.handlers.reaper import Reaper, ReapReport
from chalicelib.handlers.waker import answer
from chalicelib.runtime import Runtime
from tests.integration.harness import World

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
HOUR = 3600.0


def waker_settings(settings: Settings, clients: ClientFactory) -> Settings:
    """``settings`` with a waker target group (Lambda type) on each listener, as terraform/
    makes one per load balancer."""
    elbv2 = clients.client("elbv2")
    listeners = []
    for index, listener in enumerate(settings.listeners):
        created = elbv2.create_target_group(Name=f"waker-{index}", TargetType="lambda")
        arn = created["TargetGroups"][0]["TargetGroupArn"]
        listeners.append(replace(listener, waker_target_group_arn=arn))
    return replace(settings, listeners=tuple(listeners))


def sweep(world: World, *, later: float, github: Any = None) -> ReapReport:
    """One reaper sweep ``later`` seconds from now, reading CloudWatch as in Lambda."""
    rt = world.runtime
    return reaper_of(
        rt, github=github, later=later, queue=rt.queue, metrics=rt.reaper.metrics
    ).run()


def reaper_of(
    rt: Runtime,
    *,
    github: Any,
    later: float = 0.0,
    queue: Queue | None = None,
    metrics: RequestCounts | None = None,
) -> Reaper:
    """The runtime's reaper with GitHub's truth as ``github`` says, its clock ``later``
    seconds ahead; without ``queue`` a wait is reported, without ``metrics`` nothing sleeps."""
    return Reaper(
        settings=rt.settings,
        store=rt.store,
        converger=rt.converger,
        repo_configs=rt.converger.repo_configs,
        inventory=rt.reaper.inventory,
        github=github,
        clock=lambda: time.time() + later,
        queue=queue,
        metrics=metrics,
    )


def requests_served(world: World, branch: str, count: int, *, at: float) -> None:
    """The load balancer routed ``count`` requests to the branch's target group in the
    minute at ``at`` (epoch seconds), and published it as ALB does."""
    env = world.env(branch)
    assert env is not None and env.listener_arn and env.target_group_arn
    dimensions = [
        {"Name": "LoadBalancer", "Value": load_balancer_dimension(env.listener_arn)},
        {"Name": "TargetGroup", "Value": target_group_dimension(env.target_group_arn)},
    ]
    world.aws_side.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": dimensions,
                "Value": float(count),
                "Unit": "Count",
                "Timestamp": datetime.fromtimestamp(at, UTC),
            }
        ],
    )


def tasks_stopped(world: World, branch: str) -> None:
    """ECS stopped the service's tasks (scaled to zero): their targets are deregistered."""
    env = world.env(branch)
    assert env is not None and env.target_group_arn is not None
    elbv2 = world.aws_side.client("elbv2")
    health = elbv2.describe_target_health(TargetGroupArn=env.target_group_arn)
    targets = [d["Target"] for d in health["TargetHealthDescriptions"]]
    if targets:
        elbv2.deregister_targets(TargetGroupArn=env.target_group_arn, Targets=targets)


def alb_request(
    world: World, branch: str, *, user_agent: str = BROWSER, method: str = "GET"
) -> dict[str, Any]:
    """A request for the branch's host that the load balancer forwards to the waker: the
    event ALB sends a Lambda target ("Lambda functions as targets", ELB guide)."""
    host = world.names(branch).host
    event = {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:waker"}},
        "httpMethod": method,
        "path": "/",
        "queryStringParameters": {},
        "headers": {"host": host, "user-agent": user_agent, "accept": "text/html"},
        "body": "",
        "isBase64Encoded": False,
    }
    return answer(event, world.runtime.waker_deps())


def wake_message(world: World, branch: str) -> str:
    """The body the dashboard or the waker queues to wake ``branch``."""
    return json.dumps(ConvergeRequest(world.names(branch).slug, WAKE_CAUSE).to_message())


def forwards(world: World, branch: str) -> list[tuple[str, int]]:
    """(target group ARN, weight) the branch's rule forwards to, as ELB holds it."""
    env = world.env(branch)
    assert env is not None and env.rule_arn is not None
    [rule] = world.aws_side.client("elbv2").describe_rules(RuleArns=[env.rule_arn])["Rules"]
    [action] = rule["Actions"]
    if "ForwardConfig" in action and len(action["ForwardConfig"]["TargetGroups"]) > 1:
        groups = action["ForwardConfig"]["TargetGroups"]
        return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
    return [(action["TargetGroupArn"], 1)]


def desired_count(world: World, branch: str) -> int:
    return int(world.service(branch)["desiredCount"])
