"""Through ``branchenv local`` (issue 17, part 5): the stack's load balancer sends a rule
that forwards to the waker target group to app.py's ``waker`` with the ALB event, and its
RequestCount per target group is what the reaper's GetMetricData reads, through the app's
own (strict) clients.

The first test moves a rule by hand, as converge's sleep moves it ([waker weight 1, the
environment's target group weight 0]), and sends a link-preview bot's request and a HEAD,
which get the page and wake nothing. The second is the issue's "done when": with
``sleep_after: 1m``, after more than a minute with no request one reaper pass puts the
preview to sleep at 0 tasks; a request answers the waking page, and the preview serves
again, ``ready``, within a minute. The minute passes on the reaper's clock, not the wall's
(``reap_later``), so the test does not wait it out.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.handlers.reaper import ReapReport
from chalicelib.handlers.waker import RETRY_AFTER_SECONDS
from chalicelib.local.demo import fetch_preview
from chalicelib.local.requestcount import NAMESPACE, dimensions
from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import (
    REPOSITORY,
    get_json,
    push,
    slug_of,
    stack_options,
    wait_for_environment,
)
from tests.integration.sleepy import reaper_of

pytestmark = pytest.mark.e2e
BRANCH = "feature/nap"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(stack_options(app_name="napper")) as running:
        yield running


def _request(url: str, method: str, user_agent: str) -> tuple[int, dict[str, str], str]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port or 80, timeout=10)
    try:
        connection.request(method, "/", headers={"Host": parts.netloc, "User-Agent": user_agent})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    finally:
        connection.close()


def reap_later(stack: LocalStack, seconds: float) -> ReapReport:
    """One pass of the stack's own reaper, ``seconds`` from now on its clock."""
    running = stack.runtime.reaper
    return reaper_of(
        stack.runtime,
        github=running.github,
        later=seconds,
        queue=running.queue,
        metrics=running.metrics,
    ).run()


def _request_count(stack: LocalStack, balancer_arn: str, group: str) -> float:
    now = datetime.now(UTC)
    metric = {
        "Namespace": NAMESPACE,
        "MetricName": "RequestCount",
        "Dimensions": dimensions(balancer_arn, group),
    }
    answer = stack.runtime.clients.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {"Id": "r", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )
    return float(sum(answer["MetricDataResults"][0]["Values"]))


def test_a_rule_on_the_waker_answers_the_waking_page_and_requests_are_counted(
    stack: LocalStack,
) -> None:
    sha = fake_sha("nap")
    push(stack, BRANCH, sha)
    slug = slug_of(stack, BRANCH)
    shown = wait_for_environment(stack, slug, lambda r: r.get("status") in ("ready", "failed"))
    assert shown.get("status") == "ready", shown.get("reason")
    assert stack.records is not None and stack.balancer is not None
    record = stack.records.get(slug)
    assert record is not None and record.rule_arn and record.target_group_arn
    listener = next(
        i for i in stack.runtime.settings.listeners if i.listener_arn == record.listener_arn
    )
    assert listener.waker_target_group_arn is not None
    elbv2 = stack.runtime.clients.client("elbv2")
    [described] = elbv2.describe_listeners(ListenerArns=[listener.listener_arn])["Listeners"]
    balancer_arn = described["LoadBalancerArn"]

    for _ in range(2):
        assert fetch_preview(shown["url"])[0] == 200
    elbv2.modify_rule(
        RuleArn=record.rule_arn,
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": listener.waker_target_group_arn, "Weight": 1},
                        {"TargetGroupArn": record.target_group_arn, "Weight": 0},
                    ]
                },
            }
        ],
    )
    bot = _request(
        shown["url"], "GET", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
    )
    head = _request(shown["url"], "HEAD", "Mozilla/5.0")
    stack.balancer.requests.flush()

    status, headers, body = bot
    assert (status, headers["Retry-After"]) == (503, str(RETRY_AFTER_SECONDS))
    assert BRANCH in body and "waking up" in body.lower()
    assert (head[0], head[2]) == (503, "")
    assert _request_count(stack, balancer_arn, record.target_group_arn) == 2
    assert _request_count(stack, balancer_arn, listener.waker_target_group_arn) == 2


def test_an_idle_preview_sleeps_at_zero_tasks_and_the_first_request_wakes_it(
    stack: LocalStack,
) -> None:
    branch, sha = "feature/doze", fake_sha("doze")
    files = {"repository": REPOSITORY, "path": "branchenv.yml", "ref": sha}
    get_json(
        f"{stack.stub_url}/_local/github/files", "PUT", {**files, "content": "sleep_after: 1m\n"}
    )
    push(stack, branch, sha)
    slug = slug_of(stack, branch)
    shown = wait_for_environment(stack, slug, lambda r: r.get("status") in ("ready", "failed"))
    assert shown.get("status") == "ready", shown.get("reason")
    assert fetch_preview(shown["url"])[0] == 200
    assert slug not in " ".join(stack.reap().get("slept", []))  # within sleep_after: awake

    # More than sleep_after with no request: one reaper pass 70 s from now (the reaper's
    # clock moves; CloudWatch's datapoints keep their real timestamps, so the window it asks
    # about holds none of the requests above). `branchenv local` waits the real minute.
    assert any(slug in item for item in reap_later(stack, 70).slept)

    asleep = wait_for_environment(stack, slug, lambda r: r.get("status") == "sleeping")
    assert asleep.get("status") == "sleeping"
    assert stack.records is not None and stack.data_plane is not None and stack.infra
    record = stack.records.get(slug)
    assert record is not None and record.service_name
    ecs = stack.runtime.clients.client("ecs")
    [service] = ecs.describe_services(
        cluster=stack.infra.cluster_name, services=[record.service_name]
    )["services"]
    assert service["desiredCount"] == 0
    deadline = time.monotonic() + 10
    while stack.data_plane.tasks.of_service(service["serviceArn"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.data_plane.tasks.of_service(service["serviceArn"]) == []  # no task runs

    status, headers, body = _request(shown["url"], "GET", "Mozilla/5.0")
    woken = time.monotonic()
    assert (status, headers["Retry-After"]) == (503, str(RETRY_AFTER_SECONDS))
    assert branch in body
    while fetch_preview(shown["url"])[0] != 200 and time.monotonic() - woken < 60:
        time.sleep(0.5)

    assert fetch_preview(shown["url"]) == (
        200,
        f"preview of {REPOSITORY} branch {branch} at commit {sha}",
    )
    awake = wait_for_environment(stack, slug, lambda r: r.get("status") == "ready")
    assert awake.get("status") == "ready"
