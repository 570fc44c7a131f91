"""The local load balancer routes as the ALB's listener says, to targets its health checks
pass (ELB guide: "Condition types for listener rules", "Health checks for Application Load
Balancer target groups", "Troubleshoot your Application Load Balancers").

Real HTTP on loopback, moto in-process for the listener, rules and target groups, the
built-in preview app as the target; nothing is patched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.alb import ERROR_PAGES, LocalLoadBalancer, host_matches, host_name
from chalicelib.local.bootstrap import NOT_FOUND_BODY
from chalicelib.local.demo import fetch_preview
from chalicelib.local.health import HealthChecker, matches
from chalicelib.local.tasks import PreviewApp, TaskNetwork, TaskSpec
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import REGION


@pytest.mark.parametrize(
    ("values", "host", "expected"),
    [
        (["shop.preview.localhost"], "shop.preview.localhost", True),
        (["Shop.Preview.LOCALHOST"], "shop.preview.localhost", True),  # case-insensitive
        (["*.preview.localhost"], "a-b.preview.localhost", True),
        (["*.example.com"], "example.com", False),  # the guide's own example
        (["s?op.preview.localhost"], "shop.preview.localhost", True),
        (["s?op.preview.localhost"], "sop.preview.localhost", False),  # ? is exactly one
        (["shop.preview.localhost"], "shop.preview.localhost.evil", False),
        (["a.b", "shop.preview.localhost"], "shop.preview.localhost", True),  # any value
        (["shop.preview.localhost"], "shopXpreview.localhost", False),  # '.' is literal
    ],
)
def test_host_header_values_match_as_alb_compares_them(
    values: list[str], host: str, expected: bool
) -> None:
    assert host_matches(values, host) is expected


def test_the_host_name_is_the_host_header_without_its_port() -> None:
    assert host_name("Shop.Preview.Localhost:8080") == "shop.preview.localhost"
    assert host_name("shop.preview.localhost") == "shop.preview.localhost"


def test_matcher_codes_and_ranges() -> None:
    assert matches("200-399", 302) and not matches("200-399", 404)
    assert matches("200,202", 202) and not matches("200,202", 201)


@dataclass
class Balancer:
    clients: ClientFactory
    infra: BaseInfrastructure
    network: TaskNetwork
    checker: HealthChecker
    lb: LocalLoadBalancer
    reachable: dict[int, bool]

    def url(self, host: str) -> str:
        return f"http://{host}:{self.lb.port}/"

    def group(self, name: str, path: str = "/healthz", port: int = 8080) -> str:
        return str(
            self.clients.client("elbv2").create_target_group(
                Name=name,
                Protocol="HTTP",
                Port=port,
                VpcId=self.infra.vpc_id,
                TargetType="ip",
                HealthCheckPath=path,
                HealthCheckIntervalSeconds=5,
                HealthyThresholdCount=2,
                UnhealthyThresholdCount=2,
                Matcher={"HttpCode": "200-399"},
            )["TargetGroups"][0]["TargetGroupArn"]
        )

    def rule(self, priority: int, hosts: list[str], group: str) -> None:
        self.clients.client("elbv2").create_rule(
            ListenerArn=self.infra.listener_arn,
            Priority=priority,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": hosts}}],
            Actions=[{"Type": "forward", "TargetGroupArn": group}],
        )

    def task(
        self, group: str, address: str, sha: str, port: int = 8080, attach: bool = True
    ) -> PreviewApp:
        spec = TaskSpec("td", "image", port, {"COMMIT_SHA": sha, "BRANCH": "b"}, {})
        app = PreviewApp(spec, health_path="/healthz", repository="octo-org/shop")
        if attach:
            self.network.attach(address, port, app.host, app.port)
        self.clients.client("elbv2").register_targets(
            TargetGroupArn=group, Targets=[{"Id": address, "Port": port}]
        )
        self.checker.watch(group, address, port)
        return app


@pytest.fixture
def balancer(infra: BaseInfrastructure) -> Iterator[Balancer]:
    moto_side = ClientFactory(REGION)  # the load balancer reads moto as AWS itself
    network = TaskNetwork()
    reachable: dict[int, bool] = {}

    def port_reachable(group: str, port: int) -> bool:
        return reachable.get(port, True)

    # 5 s intervals and the 10 s connection timeout at 1/100: 0.25 s (the floor), 0.1 s.
    def scale(seconds: float) -> float:
        return seconds / 100

    checker = HealthChecker(
        moto_side, network, scale=scale, port_reachable=port_reachable, refresh_seconds=0.1
    )
    lb = LocalLoadBalancer(
        moto_side,
        checker,
        network,
        listener_arns=lambda: [infra.listener_arn],
        port=0,
        scale=scale,
        port_reachable=port_reachable,
    )
    lb.start()
    checker.start()
    try:
        yield Balancer(moto_side, infra, network, checker, lb, reachable)
    finally:
        checker.stop()
        lb.stop()


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_no_matching_rule_gets_the_listener_default_action(balancer: Balancer) -> None:
    assert fetch_preview(balancer.url("nobody.preview.localhost")) == (404, NOT_FOUND_BODY)


def test_rules_act_in_priority_order_and_forward_to_healthy_targets(balancer: Balancer) -> None:
    wide, narrow = balancer.group("be-wide"), balancer.group("be-narrow")
    balancer.rule(20, ["*.preview.localhost"], wide)
    balancer.rule(10, ["shop.preview.localhost"], narrow)
    balancer.task(wide, "10.0.10.5", "wide-sha")
    app = balancer.task(narrow, "10.0.10.6", "narrow-sha")

    assert _until(lambda: balancer.checker.state(narrow, "10.0.10.6", 8080) == "healthy")
    assert _until(lambda: balancer.checker.state(wide, "10.0.10.5", 8080) == "healthy")
    assert "narrow-sha" in fetch_preview(balancer.url("SHOP.preview.localhost"))[1]
    assert "wide-sha" in fetch_preview(balancer.url("other.preview.localhost"))[1]
    assert app.requests == 1 and app.health_checks >= 1


def test_describe_target_health_tells_what_the_checks_found(balancer: Balancer) -> None:
    app_side = ClientFactory(REGION)
    balancer.checker.install(app_side)
    group = balancer.group("be-health")
    app = balancer.task(group, "10.0.10.7", "sha", attach=False)  # not listening yet

    def state() -> str:
        answer = app_side.client("elbv2").describe_target_health(TargetGroupArn=group)
        return str(answer["TargetHealthDescriptions"][0]["TargetHealth"]["State"])

    assert state() == "initial"  # moto would say healthy at once
    balancer.network.attach("10.0.10.7", 8080, app.host, app.port)
    assert _until(lambda: state() == "healthy")


def test_a_group_with_no_registered_target_answers_503(balancer: Balancer) -> None:
    balancer.rule(30, ["empty.preview.localhost"], balancer.group("be-empty"))

    assert fetch_preview(balancer.url("empty.preview.localhost")) == (503, ERROR_PAGES[503])


def test_a_closed_port_is_never_reached_and_fails_its_health_checks(balancer: Balancer) -> None:
    balancer.reachable[3000] = False
    group = balancer.group("be-closed", port=3000)
    balancer.rule(40, ["closed.preview.localhost"], group)
    app = balancer.task(group, "10.0.10.8", "sha", port=3000)

    assert _until(lambda: balancer.checker.state(group, "10.0.10.8", 3000) == "unhealthy")
    status, _ = fetch_preview(balancer.url("closed.preview.localhost"))

    assert status == 504  # failed open to the unhealthy target, whose packets are dropped
    assert (app.requests, app.health_checks) == (0, 0)
    app.stop()


def test_a_target_that_stops_answering_turns_unhealthy(balancer: Balancer) -> None:
    group = balancer.group("be-stops")
    app = balancer.task(group, "10.0.10.9", "sha")
    assert _until(lambda: balancer.checker.state(group, "10.0.10.9", 8080) == "healthy")

    app.stop()

    assert _until(lambda: balancer.checker.state(group, "10.0.10.9", 8080) == "unhealthy")
    health = balancer.checker.health(group, "10.0.10.9", 8080)
    assert health is not None and health["Reason"] == "Target.FailedHealthChecks"
