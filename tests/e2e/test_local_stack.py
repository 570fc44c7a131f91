"""End to end over HTTP: signed webhooks in, environments and AWS resources (moto) out."""

from __future__ import annotations

import pytest

from chalicelib.local.demo import audit
from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import build_delivery, fake_sha, send, set_branch
from tests.e2e.conftest import REPOSITORY, get_json, push, slug_of, wait_for_environment

pytestmark = pytest.mark.e2e

SETTLED = ("ready", "failed")


def _settled(record: dict[str, object]) -> bool:
    return record.get("status") in SETTLED


def test_unsigned_webhook_is_refused_with_401(stack: LocalStack) -> None:
    delivery = build_delivery("push", repository=REPOSITORY, branch="feature/unsigned")

    reply = send(f"{stack.app_url}/github/webhook", delivery, "not-the-secret")

    assert reply.status == 401
    assert "signature" in reply.json()["error"]


def test_signed_push_is_accepted_with_the_preview_url(stack: LocalStack) -> None:
    reply = push(stack, "feature/accepted", fake_sha("accepted"))

    slug = slug_of(stack, "feature/accepted")
    assert reply.status == 202
    assert reply.json()["url"] == f"http://{slug}.preview.localhost:{stack.balancer.port}"


def test_pushed_branch_becomes_ready_with_its_url(stack: LocalStack) -> None:
    sha = fake_sha("login")
    push(stack, "feature/login", sha)
    slug = slug_of(stack, "feature/login")

    record = wait_for_environment(stack, slug, _settled)

    assert record["status"] == "ready", record.get("reason")
    assert record["url"] == f"http://{slug}.preview.localhost:{stack.balancer.port}"
    assert record["sha"] == sha


def test_new_branch_moves_through_building_and_deploying_to_ready(stack: LocalStack) -> None:
    order = ["pending", "building", "deploying", "ready"]
    push(stack, "feature/lifecycle", fake_sha("lifecycle"))
    slug = slug_of(stack, "feature/lifecycle")
    seen: list[str] = []

    def watch(record: dict[str, object]) -> bool:
        status = str(record.get("status"))
        if not seen or seen[-1] != status:
            seen.append(status)
        return status in SETTLED

    wait_for_environment(stack, slug, watch, poll_seconds=0.05)
    _, slack = get_json(f"{stack.stub_url}/_local/slack")
    posted = [
        word
        for call in slack["calls"]
        if "feature/lifecycle" in call["text"]
        for word in order
        if f": {word}" in call["text"]
    ]

    assert seen[-1] == "ready"
    assert seen == sorted(seen, key=order.index)
    assert posted == ["building", "deploying", "ready"]


def test_ready_branch_is_listed_by_the_dashboard_api(stack: LocalStack) -> None:
    push(stack, "feature/listed", fake_sha("listed"))
    slug = slug_of(stack, "feature/listed")
    wait_for_environment(stack, slug, _settled)

    status, body = get_json(f"{stack.app_url}/api/environments")

    assert status == 200
    listed = {e["slug"]: e["status"] for e in body["environments"]}
    assert listed[slug] == "ready"


def test_ready_branch_has_its_resources_in_moto(stack: LocalStack) -> None:
    push(stack, "feature/resources", fake_sha("resources"))
    slug = slug_of(stack, "feature/resources")
    record = wait_for_environment(stack, slug, _settled)
    assert record["status"] == "ready", record.get("reason")
    clients = stack.clients
    assert clients is not None
    settings = stack.runtime.settings
    host = f"{slug}.{settings.preview_domain}"

    services = clients.client("ecs").list_services(cluster=settings.cluster)["serviceArns"]
    groups = clients.client("elbv2").describe_target_groups()["TargetGroups"]
    rules = clients.client("elbv2").describe_rules(ListenerArn=settings.listeners[0].listener_arn)[
        "Rules"
    ]
    records = clients.client("route53").list_resource_record_sets(
        HostedZoneId=settings.hosted_zone_id
    )["ResourceRecordSets"]

    assert any(f"-{slug}_" in arn for arn in services)
    assert any(slug[:20].rstrip("-") in g["TargetGroupName"] for g in groups)
    hosts = [v for r in rules for c in r["Conditions"] for v in c.get("Values", [])] + [
        v
        for r in rules
        for c in r["Conditions"]
        for v in c.get("HostHeaderConfig", {}).get("Values", [])
    ]
    assert host in hosts
    assert {(r["Name"], r["Type"]) for r in records} >= {(f"{host}.", "A"), (f"{host}.", "TXT")}


def test_fail_build_branch_ends_failed_with_a_reason(stack: LocalStack) -> None:
    push(stack, "feature/broken--fail-build", fake_sha("broken"))
    slug = slug_of(stack, "feature/broken--fail-build")

    record = wait_for_environment(stack, slug, _settled)

    assert record["status"] == "failed"
    assert record.get("reason")


def test_reap_removes_an_environment_whose_branch_is_gone(stack: LocalStack) -> None:
    push(stack, "feature/forgotten", fake_sha("forgotten"))
    slug = slug_of(stack, "feature/forgotten")
    wait_for_environment(stack, slug, _settled)
    set_branch(stack.stub_url, REPOSITORY, "feature/forgotten", "0" * 40, exists=False)

    status, report = get_json(f"{stack.stub_url}/_local/reap", method="POST", body={})
    record = wait_for_environment(stack, slug, lambda r: r.get("status") == "deleted")

    assert status == 200
    assert slug in report["branch_gone"]
    assert record.get("status") == "deleted"
    assert audit(stack, slug) == []
