"""The local load balancer routes as the ALB's listener says, to targets its health checks
pass (ELB guide: "Condition types for listener rules", "Health checks for Application Load
Balancer target groups", "Troubleshoot your Application Load Balancers"), to the waker's
Lambda target group with the ALB event ("Lambda functions as targets"), and counts
RequestCount in CloudWatch ("CloudWatch metrics for your Application Load Balancer").

Real HTTP on loopback, moto in-process for the listener, rules, target groups, records and
metrics, the built-in preview app as the target; the waker is injected (a recording
function, or chalicelib.handlers.waker itself over the moto table); nothing is patched.
"""

from __future__ import annotations

import base64
import http.client
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.domain.environments import Environment, Status
from chalicelib.handlers.waker import RETRY_AFTER_SECONDS, WakerDeps, answer
from chalicelib.local.alb import (
    ERROR_PAGES,
    LocalLoadBalancer,
    host_matches,
    host_name,
    lambda_answer,
)
from chalicelib.local.bootstrap import NOT_FOUND_BODY
from chalicelib.local.demo import fetch_preview
from chalicelib.local.health import HealthChecker, matches
from chalicelib.local.requestcount import NAMESPACE, RequestCounter, dimensions
from chalicelib.local.tasks import PreviewApp, TaskNetwork, TaskSpec
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, DOMAIN, REGION

Event = dict[str, Any]


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
    events: list[Event] = field(default_factory=list)  # what reached the waker
    waker: Callable[[Event], Any] | None = None  # what it answers (None: the page below)

    def url(self, host: str) -> str:
        return f"http://{host}:{self.lb.port}/"

    def call_waker(self, event: Event) -> Any:
        self.events.append(event)
        if self.waker is not None:
            return self.waker(event)
        return {
            "statusCode": 503,
            "statusDescription": "503 Service Unavailable",
            "headers": {"Content-Type": "text/html", "Retry-After": "10"},
            "body": "<h1>waking up</h1>",
            "isBase64Encoded": False,
        }

    def weighted_rule(self, priority: int, host: str, weights: list[tuple[str, int]]) -> None:
        """A rule forwarding by ForwardConfig: (target group, weight) pairs."""
        groups = [{"TargetGroupArn": group, "Weight": weight} for group, weight in weights]
        self.clients.client("elbv2").create_rule(
            ListenerArn=self.infra.listener_arn,
            Priority=priority,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
            Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
        )

    def request(
        self, method: str, host: str, target: str, body: bytes = b"", **headers: str
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.lb.port, timeout=10)
        try:
            sent = {"Host": f"{host}:{self.lb.port}", **headers}
            connection.request(method, target, body=body or None, headers=sent)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

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
    made: list[Balancer] = []
    lb = LocalLoadBalancer(
        moto_side,
        checker,
        network,
        listener_arns=lambda: [infra.listener_arn],
        port=0,
        scale=scale,
        port_reachable=port_reachable,
        waker=lambda event: made[0].call_waker(event),
        flush_seconds=3600,  # the tests flush when they read
    )
    made.append(Balancer(moto_side, infra, network, checker, lb, reachable))
    lb.start()
    checker.start()
    try:
        yield made[0]
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


# --- the waker's Lambda target group ------------------------------------------------------


def _waker_group(balancer: Balancer) -> str:
    group = balancer.infra.waker_target_group_arn
    assert group is not None
    return group


def _healthy_task(balancer: Balancer, name: str, address: str) -> tuple[str, PreviewApp]:
    group = balancer.group(name)
    app = balancer.task(group, address, "awake-sha")
    assert _until(lambda: balancer.checker.state(group, address, 8080) == "healthy")
    return group, app


def test_a_sleeping_rule_sends_the_alb_event_to_the_waker_and_relays_its_answer(
    balancer: Balancer,
) -> None:
    waker = _waker_group(balancer)
    env_group, app = _healthy_task(balancer, "be-sleepy", "10.0.10.20")
    # What converge's sleep leaves: the waker weight 1, the environment's group weight 0.
    balancer.weighted_rule(50, "sleepy.preview.localhost", [(waker, 1), (env_group, 0)])

    status, headers, body = balancer.request(
        "POST",
        "sleepy.preview.localhost",
        "/cart/items?a=1&a=2&next=%2Fhome&flag",
        b'{"sku": 7}',
        **{"Content-Type": "application/json", "X-Custom-Header": "Yes", "User-Agent": "qa"},
    )

    assert (status, headers["Retry-After"], body) == (503, "10", b"<h1>waking up</h1>")
    assert headers["Content-Type"] == "text/html"
    [event] = balancer.events
    assert event["requestContext"] == {"elb": {"targetGroupArn": waker}}
    assert (event["httpMethod"], event["path"]) == ("POST", "/cart/items")
    # Not decoded, the last value of a repeated key (ELB guide, "Lambda functions as targets")
    assert event["queryStringParameters"] == {"a": "2", "next": "%2Fhome", "flag": ""}
    assert (event["body"], event["isBase64Encoded"]) == ('{"sku": 7}', False)
    sent = event["headers"]
    assert all(name == name.lower() for name in sent)
    assert sent["host"] == f"sleepy.preview.localhost:{balancer.lb.port}"
    assert (sent["x-custom-header"], sent["user-agent"]) == ("Yes", "qa")
    assert (sent["x-forwarded-proto"], sent["x-forwarded-port"]) == ("http", str(balancer.lb.port))
    assert sent["x-amzn-trace-id"].startswith("Root=1-")
    assert app.requests == 0  # weight 0 never gets a request


def test_a_binary_body_goes_base64_and_a_base64_answer_is_decoded(balancer: Balancer) -> None:
    balancer.weighted_rule(51, "binary.preview.localhost", [(_waker_group(balancer), 1)])
    balancer.waker = lambda event: {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png", "Content-Length": "999"},
        "body": base64.b64encode(b"\x89PNG\x00").decode(),
        "isBase64Encoded": True,
    }

    status, headers, body = balancer.request(
        "PUT", "binary.preview.localhost", "/upload", b"\x00\xff", **{"Content-Type": "image/png"}
    )

    assert (status, body, headers["Content-Length"]) == (200, b"\x89PNG\x00", "5")
    [event] = balancer.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"
    assert event["queryStringParameters"] == {}


def test_a_failing_or_malformed_waker_is_a_502(balancer: Balancer) -> None:
    balancer.weighted_rule(52, "broken.preview.localhost", [(_waker_group(balancer), 1)])

    def fails(event: Event) -> Any:
        raise RuntimeError("the function failed")

    balancer.waker = fails
    assert balancer.request("GET", "broken.preview.localhost", "/")[0] == 502
    balancer.waker = lambda event: {"body": "no status"}
    assert balancer.request("GET", "broken.preview.localhost", "/")[0] == 502
    assert lambda_answer(None)[0] == lambda_answer({"statusCode": "x"})[0] == 502


def test_weight_zero_is_never_chosen_and_all_zero_is_a_503(balancer: Balancer) -> None:
    heavy, heavy_app = _healthy_task(balancer, "be-heavy", "10.0.10.21")
    light, light_app = _healthy_task(balancer, "be-light", "10.0.10.22")
    balancer.weighted_rule(53, "weights.preview.localhost", [(light, 0), (heavy, 1)])
    balancer.weighted_rule(54, "zero.preview.localhost", [(light, 0), (heavy, 0)])

    for _ in range(3):
        assert balancer.request("GET", "weights.preview.localhost", "/")[0] == 200

    assert balancer.request("GET", "zero.preview.localhost", "/")[0] == 503
    assert (heavy_app.requests, light_app.requests) == (3, 0)


class RecordingQueue:
    """The work queue as the waker sees it (chalicelib.domain.messages.Queue)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], str, str | None]] = []

    def send(self, message: dict[str, Any], *, group_id: str, dedup_id: str | None = None) -> str:
        self.sent.append((message, group_id, dedup_id))
        return str(len(self.sent))


def test_the_real_waker_answers_a_sleeping_preview_and_asks_for_one_wake(
    balancer: Balancer,
) -> None:
    store = DynamoEnvironmentStore(balancer.clients.client("dynamodb"), balancer.infra.table_name)
    store.put(
        Environment(
            slug="napping",
            repository="octo-org/shop",
            branch="napping",
            status=Status.SLEEPING,
            asleep=True,
        )
    )
    queue = RecordingQueue()
    deps = WakerDeps(store, queue, APP, DOMAIN)
    balancer.waker = lambda event: answer(event, deps)
    balancer.weighted_rule(55, f"napping.{DOMAIN}", [(_waker_group(balancer), 1)])

    bot = balancer.request("GET", f"napping.{DOMAIN}", "/", **{"User-Agent": "Slackbot 1.0"})
    person = balancer.request("GET", f"napping.{DOMAIN}", "/", **{"User-Agent": "Mozilla/5.0"})

    for status, headers, body in (bot, person):
        assert (status, headers["Retry-After"]) == (503, str(RETRY_AFTER_SECONDS))
        assert b"napping" in body and b"http-equiv" in body  # the page reloads itself
    assert [(message["cause"], group) for message, group, _ in queue.sent] == [("wake", "napping")]


# --- RequestCount in CloudWatch -------------------------------------------------------------


def _request_count(clients: ClientFactory, balancer_arn: str, group: str) -> float:
    """What the reaper asks: MetricStat, both dimensions, Sum, Period 60."""
    now = datetime.now(UTC)
    answer = clients.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "requests",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": "RequestCount",
                        "Dimensions": dimensions(balancer_arn, group),
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )
    [result] = answer["MetricDataResults"]
    return float(sum(result["Values"]))


def _balancer_arn(balancer: Balancer) -> str:
    elbv2 = balancer.clients.client("elbv2")
    [listener] = elbv2.describe_listeners(ListenerArns=[balancer.infra.listener_arn])["Listeners"]
    return str(listener["LoadBalancerArn"])


def test_request_count_per_target_group_is_readable_by_get_metric_data(
    balancer: Balancer,
) -> None:
    waker = _waker_group(balancer)
    awake, _ = _healthy_task(balancer, "be-counted", "10.0.10.23")
    balancer.rule(60, ["awake.preview.localhost"], awake)
    balancer.weighted_rule(61, "asleep.preview.localhost", [(waker, 1), (awake, 0)])
    balancer.rule(62, ["nobody-home.preview.localhost"], balancer.group("be-no-target"))

    for _ in range(3):
        assert balancer.request("GET", "awake.preview.localhost", "/")[0] == 200
    for _ in range(2):
        assert balancer.request("GET", "asleep.preview.localhost", "/")[0] == 503
    assert balancer.request("GET", "nobody-home.preview.localhost", "/")[0] == 503  # no target
    assert balancer.request("GET", "unknown.preview.localhost", "/")[0] == 404  # default rule
    arn = _balancer_arn(balancer)
    assert _request_count(balancer.clients, arn, awake) == 0  # nothing until a flush

    balancer.lb.requests.flush()

    assert _request_count(balancer.clients, arn, awake) == 3
    assert _request_count(balancer.clients, arn, waker) == 2
    no_target = balancer.group("be-no-target-2")  # a group never routed to has no data
    assert _request_count(balancer.clients, arn, no_target) == 0
    assert balancer.lb.requests.pending() == {}


class FlakyCloudWatch:
    """A CloudWatch whose first PutMetricData fails, then records what it is sent."""

    def __init__(self) -> None:
        self.calls = 0
        self.data: list[dict[str, Any]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("moto is restarting")
        self.data.extend(MetricData)


class OneClient:
    def __init__(self, client: object) -> None:
        self._client = client

    def client(self, name: str) -> object:
        assert name == "cloudwatch"
        return self._client


def test_counts_survive_a_failed_flush_and_publish_on_the_ticks_and_at_stop() -> None:
    cloudwatch = FlakyCloudWatch()
    counter = RequestCounter(OneClient(cloudwatch), flush_seconds=0.05, clock=lambda: 1e9)
    balancer_arn = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/demo-previews/50dc"
    group = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/demo-shop/73e2"
    counter.count(balancer_arn, group)
    with pytest.raises(ConnectionError):
        counter.flush()
    counter.count(balancer_arn, group)
    assert counter.pending() == {("app/demo-previews/50dc", "targetgroup/demo-shop/73e2"): 2}

    counter.start()
    assert _until(lambda: cloudwatch.data != [])
    counter.count(balancer_arn, group)
    counter.stop()

    assert [d["Value"] for d in cloudwatch.data] == [2.0, 1.0]
    assert cloudwatch.data[0]["Dimensions"] == dimensions(balancer_arn, group)
    assert {d["Unit"] for d in cloudwatch.data} == {"Count"}
    assert cloudwatch.data[0]["Timestamp"] == datetime.fromtimestamp(1e9, UTC)
