"""Sleep and wake, the pure parts: the plans, the idle check, the waker's page, the
durations, the rule's served target group and the CloudWatch queries."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.aws.cloudwatch import (
    MAX_QUERIES_PER_CALL,
    Metrics,
    TrafficQuery,
    load_balancer_dimension,
    target_group_dimension,
)
from chalicelib.aws.elbv2 import Rule, _rule
from chalicelib.domain.durations import parse_sleep_after_minutes
from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore, Status
from chalicelib.domain.settings import Settings, SettingsError
from chalicelib.engine.converge.model import (
    AwaitHealthyTarget,
    RouteToService,
    RouteToWaker,
    UpdateService,
)
from chalicelib.engine.converge.planner import plan
from chalicelib.engine.repoconfig import ConfigError, RepoDefaults, load_repo_config
from chalicelib.handlers.idle import idle_environments
from chalicelib.handlers.waker import WakerDeps, answer, is_bot
from tests.conftest import offline_settings
from tests.unit.test_plan import EVERYTHING, IMAGE, LISTENER, NAMES, RULE, SERVICE, SHA, TARGET

WAKER = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-waker/abc"
LISTENER_ARN = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/shop-previews/50dc/f1"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-feature-cart/73e2"
SLEEPY_TARGET = replace(TARGET, listener=replace(LISTENER, waker_target_group_arn=WAKER))
COMPLETED = replace(SERVICE, rollout_state="COMPLETED")
READY = Environment(
    slug=NAMES.slug,
    repository="octo/shop",
    branch="feature/cart",
    desired_sha=SHA,
    deployed_sha=SHA,
    listener_arn=LISTENER.listener_arn,
    priority=7,
    status=Status.READY,
    target_group_arn="arn:tg",
)
AWAKE = replace(EVERYTHING, service=COMPLETED)
ASLEEP_IN_AWS = replace(
    EVERYTHING,
    rule=replace(RULE, target_group_arns=(WAKER, "arn:tg"), serves=WAKER),
    service=replace(COMPLETED, desired_count=0),
)


def kinds(steps: object) -> list[type]:
    return [type(step) for step in steps]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- plans


def test_falling_asleep_routes_to_the_waker_before_scaling_to_zero() -> None:
    the_plan = plan(replace(READY, asleep=True), AWAKE, SLEEPY_TARGET, None)

    assert kinds(the_plan.steps) == [RouteToWaker, UpdateService]
    route, scale = the_plan.steps
    assert route == RouteToWaker(RULE.arn, WAKER, "arn:tg")
    assert isinstance(scale, UpdateService) and scale.desired_count == 0
    assert the_plan.status == Status.SLEEPING


def test_asleep_is_a_resting_state() -> None:
    env = replace(READY, asleep=True, status=Status.SLEEPING)
    the_plan = plan(env, ASLEEP_IN_AWS, SLEEPY_TARGET, None)
    assert (the_plan.steps, the_plan.status) == ((), Status.SLEEPING)


def test_waking_scales_up_then_routes_back_once_healthy_and_shows_deploying_meanwhile() -> None:
    env = replace(READY, status=Status.SLEEPING, slept_at=1.0)
    the_plan = plan(env, ASLEEP_IN_AWS, SLEEPY_TARGET, None)

    assert kinds(the_plan.steps) == [UpdateService, AwaitHealthyTarget, RouteToService]
    assert the_plan.steps[-1] == RouteToService(RULE.arn, "arn:tg")
    assert (the_plan.status, the_plan.waiting) == (Status.READY, Status.DEPLOYING)


def test_a_wake_cut_off_after_routing_back_is_finished_not_left_deploying() -> None:
    env = replace(READY, status=Status.DEPLOYING, slept_at=1.0)
    the_plan = plan(env, AWAKE, SLEEPY_TARGET, None)
    assert (the_plan.steps, the_plan.status) == ((), Status.READY)


def test_a_failed_or_deploying_preview_is_never_put_to_sleep() -> None:
    for status in (Status.FAILED, Status.DEPLOYING):
        env = replace(READY, asleep=True, status=status, deployed_sha="d" * 40)
        assert not any(
            isinstance(step, RouteToWaker) for step in plan(env, AWAKE, SLEEPY_TARGET, None).steps
        )


def test_a_push_to_a_sleeping_branch_routes_back_only_when_its_rollout_is_healthy() -> None:
    pushed = replace(READY, status=Status.DEPLOYING, desired_sha="e" * 40)
    rolling = replace(ASLEEP_IN_AWS, service=replace(SERVICE, desired_count=1))
    image = replace(IMAGE, tag="e" * 40)
    observed = replace(rolling, sha_image=image, branch_image=image)

    assert RouteToService not in kinds(plan(pushed, observed, SLEEPY_TARGET, None).steps)
    done = replace(observed, service=replace(SERVICE, desired_count=1, rollout_state="COMPLETED"))
    steps = plan(pushed, done, SLEEPY_TARGET, None).steps
    assert kinds(steps)[-2:] == [AwaitHealthyTarget, RouteToService]


def test_without_a_waker_asleep_changes_nothing() -> None:
    the_plan = plan(replace(READY, asleep=True), AWAKE, TARGET, None)
    assert (the_plan.steps, the_plan.status) == ((), Status.READY)


# ---------------------------------------------------------------------------- idle check


class Counts:
    def __init__(self, counts: dict[str, float]) -> None:
        self.counts = counts
        self.asked: list[list[TrafficQuery]] = []

    def request_counts(self, queries: Any, *, now: float) -> dict[str, float]:
        self.asked.append(list(queries))
        return {q.target_group_arn: self.counts.get(q.target_group_arn, 0.0) for q in queries}


def sleepy_settings(**changes: Any) -> Settings:
    listener = replace(LISTENER, waker_target_group_arn=WAKER)
    return offline_settings(listeners=(listener,), **changes)


def test_only_previews_past_their_window_are_asked_about_and_only_silent_ones_sleep() -> None:
    now = 100_000.0
    old = replace(READY, ready_at=now - 7200)
    envs = [
        replace(old, slug="silent", target_group_arn="tg-silent"),
        replace(old, slug="visited", target_group_arn="tg-visited"),
        replace(old, slug="fresh", target_group_arn="tg-fresh", ready_at=now - 60),
        replace(old, slug="never", target_group_arn="tg-never", sleep_after_minutes=0.0),
        replace(old, slug="failed", target_group_arn="tg-failed", status=Status.FAILED),
    ]
    counts = Counts({"tg-visited": 4.0})

    sleepers = idle_environments(envs, sleepy_settings(), counts, now=now)

    assert [s.slug for s in sleepers] == ["silent"]
    assert [[q.target_group_arn for q in call] for call in counts.asked] == [
        ["tg-silent", "tg-visited"]
    ]
    assert sleepers[0].reason == "no request for 60 minutes"


def test_nothing_is_asked_when_no_preview_could_sleep() -> None:
    counts = Counts({})
    assert idle_environments([READY], offline_settings(), counts, now=1e9) == []
    assert counts.asked == []


# ---------------------------------------------------------------------------- CloudWatch


def test_dimensions_are_the_arn_suffixes_alb_publishes() -> None:
    assert load_balancer_dimension(LISTENER_ARN) == "app/shop-previews/50dc"
    lb = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/shop-previews/50dc"
    assert load_balancer_dimension(lb) == "app/shop-previews/50dc"
    assert target_group_dimension(TG_ARN) == "targetgroup/shop-feature-cart/73e2"


def test_many_previews_take_one_call_per_500_and_pages_are_followed() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    queries = [
        TrafficQuery(LISTENER_ARN, f"{TG_ARN}{n}", 3600) for n in range(MAX_QUERIES_PER_CALL + 1)
    ]
    with Stubber(client) as stub:
        expected = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY}
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": "q1", "Values": [2.0]}], "NextToken": "more"},
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": "q1", "Values": [1.0, 3.0]}]},
            {**expected, "NextToken": "more"},
        )
        stub.add_response(
            "get_metric_data", {"MetricDataResults": [{"Id": "q0", "Values": []}]}, expected
        )
        counts = Metrics(client).request_counts(queries, now=1_700_000_000.0)
        stub.assert_no_pending_responses()
    assert counts[f"{TG_ARN}1"] == 6.0 and counts[f"{TG_ARN}0"] == 0.0
    assert counts[f"{TG_ARN}{MAX_QUERIES_PER_CALL}"] == 0.0


def test_a_query_asks_for_the_sum_over_its_whole_window() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    now = 1_700_000_000.0
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": []},
            {
                "MetricDataQueries": [
                    {
                        "Id": "q0",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/ApplicationELB",
                                "MetricName": "RequestCount",
                                "Dimensions": [
                                    {"Name": "LoadBalancer", "Value": "app/shop-previews/50dc"},
                                    {
                                        "Name": "TargetGroup",
                                        "Value": "targetgroup/shop-feature-cart/73e2",
                                    },
                                ],
                            },
                            "Period": 120,
                            "Stat": "Sum",
                        },
                        "ReturnData": True,
                    }
                ],
                "StartTime": datetime.fromtimestamp(now - 120, UTC),
                "EndTime": datetime.fromtimestamp(now, UTC),
            },
        )
        Metrics(client).request_counts([TrafficQuery(LISTENER_ARN, TG_ARN, 90)], now=now)


# ---------------------------------------------------------------------------- the rule


def test_the_rule_serves_the_heaviest_weighted_group_or_its_only_one() -> None:
    plain = {"RuleArn": "r", "Actions": [{"Type": "forward", "TargetGroupArn": "tg"}]}
    weighted = {
        "RuleArn": "r",
        "Actions": [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": WAKER, "Weight": 1},
                        {"TargetGroupArn": "tg", "Weight": 0},
                    ]
                },
            }
        ],
    }
    fixed = {"RuleArn": "r", "Actions": [{"Type": "fixed-response"}]}
    assert _rule("l", plain, {}).serves == "tg"
    served: Rule = _rule("l", weighted, {})
    assert served.serves == WAKER and served.target_group_arns == (WAKER, "tg")
    assert _rule("l", fixed, {}).serves is None


# ---------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("1m", 1.0), ("90m", 90.0), ("2h", 120.0), ("1d", 1440.0), ("1.5", 90.0), ("never", 0.0)],
)
def test_sleep_after_reads_like_ttl(text: str, minutes: float) -> None:
    assert parse_sleep_after_minutes(text) == minutes


@pytest.mark.parametrize("text", ["30s", "0m", "soon", "", "2y", "400d"])
def test_sleep_after_below_a_minute_or_not_a_duration_is_refused(text: str) -> None:
    assert parse_sleep_after_minutes(text) is None


def test_branchenv_yml_sleep_after_errors_name_the_line_and_key() -> None:
    defaults = RepoDefaults()
    assert load_repo_config("sleep_after: 45m\n", defaults=defaults).sleep_after_minutes == 45
    assert load_repo_config("sleep_after: never\n", defaults=defaults).sleep_after_minutes == 0
    with pytest.raises(ConfigError) as error:
        load_repo_config("ttl: 3d\nsleep_after: 10s\n", defaults=defaults)
    assert "line 2: sleep_after: must be a duration like 30m" in str(error.value)
    assert "got '10s'" in str(error.value)


def test_the_setting_defaults_to_an_hour_and_names_itself_when_wrong() -> None:
    assert offline_settings().sleep_after_minutes == 60.0
    environ = {k: v for k, v in _environ().items()}
    assert (
        Settings.from_environ({**environ, "BRANCHENV_SLEEP_AFTER": "never"}).sleep_after_minutes
        == 0
    )
    with pytest.raises(SettingsError) as error:
        Settings.from_environ({**environ, "BRANCHENV_SLEEP_AFTER": "5 seconds"})
    assert "BRANCHENV_SLEEP_AFTER must be a duration" in str(error.value)


def test_a_listener_waker_must_be_an_arn_string() -> None:
    bad = [{"listener_arn": "l", "dns_name": "d", "zone_id": "z", "waker_target_group_arn": 3}]
    with pytest.raises(SettingsError) as error:
        Settings.from_environ({**_environ(), "BRANCHENV_LISTENERS": json.dumps(bad)})
    assert "BRANCHENV_LISTENERS[0].waker_target_group_arn" in str(error.value)


def _environ() -> dict[str, str]:
    from tests.unit.test_settings import BASE

    return dict(BASE)


# ---------------------------------------------------------------------------- the waker


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], str, str | None]] = []

    def send(self, message: dict[str, Any], *, group_id: str, dedup_id: str | None = None) -> str:
        self.messages.append((message, group_id, dedup_id))
        return "id"


def waker_with(env: Environment) -> tuple[WakerDeps, Sent]:
    store = InMemoryEnvironmentStore()
    store.put(env)
    sent = Sent()
    return WakerDeps(store, sent, "shop", "preview.example.com", clock=lambda: 1000.0), sent


def request(host: str, agent: str = "Mozilla/5.0", method: str = "GET") -> dict[str, Any]:
    return {"httpMethod": method, "path": "/", "headers": {"host": host, "user-agent": agent}}


def test_the_page_escapes_the_branch_and_carries_nothing_else_from_the_record() -> None:
    evil = replace(READY, branch="<script>x</script>", status=Status.SLEEPING, reason="s3cr3t")
    deps, sent = waker_with(evil)
    page = answer(request(f"{NAMES.slug}.preview.example.com:8080"), deps)

    assert "<script>x" not in page["body"] and "&lt;script&gt;x&lt;/script&gt;" in page["body"]
    assert "s3cr3t" not in page["body"] and "http" not in page["body"].split("<body>")[1]
    assert page["headers"]["Cache-Control"] == "no-store" and page["isBase64Encoded"] is False
    [(message, group, dedup)] = sent.messages
    assert message["cause"] == "wake" and group == NAMES.slug and dedup == f"wake-{NAMES.slug}-33"


def test_an_awake_preview_reached_through_the_waker_sends_no_wake() -> None:
    deps, sent = waker_with(READY)
    assert answer(request(f"{NAMES.slug}.preview.example.com"), deps)["statusCode"] == 503
    assert sent.messages == []


@pytest.mark.parametrize("host", ["other.example.org", "a.b.preview.example.com", ""])
def test_a_host_outside_the_preview_domain_is_a_404(host: str) -> None:
    deps, sent = waker_with(replace(READY, status=Status.SLEEPING))
    assert answer(request(host), deps)["statusCode"] == 404 and sent.messages == []


@pytest.mark.parametrize(
    "agent",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "facebookexternalhit/1.1",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    ],
)
def test_link_preview_bots_are_known(agent: str) -> None:
    assert is_bot(agent)
    assert not is_bot("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0")
