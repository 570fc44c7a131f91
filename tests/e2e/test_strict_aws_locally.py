"""The local stack is as strict as AWS (issue 12): ECS's circuit breaker with rollback
through ``PUT /_local/faults``, the security groups on the path ALB → task, and Lambda's
SQS retry semantics on a compressed clock."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import (
    REPOSITORY,
    TIME_FACTOR,
    get_json,
    push,
    slug_of,
    wait_for_environment,
)

pytestmark = pytest.mark.e2e


class EcsCalls:
    """Every RegisterTaskDefinition and UpdateService the app's ECS client makes, with the
    commit each is about: a registration's COMMIT_SHA, and for an update the commit of the
    revision it points at (botocore hooks on the app's own client: nothing is patched)."""

    def __init__(self, stack: LocalStack) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self._commit_of: dict[str, str] = {}  # task definition ARN → COMMIT_SHA
        self._lock = threading.Lock()
        events = stack.runtime.clients.client("ecs").meta.events
        events.register("before-parameter-build.ecs.RegisterTaskDefinition", self._register)
        events.register("after-call.ecs.RegisterTaskDefinition", self._registered)
        events.register("before-parameter-build.ecs.UpdateService", self._update)

    def _register(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append(("RegisterTaskDefinition", _commit(params)))

    def _registered(self, parsed: dict[str, Any], **_: Any) -> None:
        definition = parsed.get("taskDefinition") or {}
        commit = _commit(definition)
        if commit and definition.get("taskDefinitionArn"):
            with self._lock:
                self._commit_of[definition["taskDefinitionArn"]] = commit

    def _update(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            arn = str(params.get("taskDefinition", ""))
            self.calls.append(("UpdateService", self._commit_of.get(arn)))

    def about(self, sha: str) -> list[str]:
        with self._lock:
            return [name for name, commit in self.calls if commit == sha]


def _commit(definition: dict[str, Any]) -> str | None:
    for container in definition.get("containerDefinitions", []):
        for variable in container.get("environment", []):
            if variable.get("name") == "COMMIT_SHA":
                return str(variable.get("value"))
    return None


def _aws(stack: LocalStack) -> ClientFactory:
    """The stack's own clients (moto's side, no strict layer)."""
    assert stack.clients is not None
    return stack.clients


def _fail_shas(stack: LocalStack, shas: list[str]) -> tuple[int, Any]:
    return get_json(f"{stack.stub_url}/_local/faults", "PUT", {"ecs": {"fail_shas": shas}})


def test_queue_visibility_timeout_runs_on_the_compressed_clock(stack: LocalStack) -> None:
    sqs = _aws(stack).client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.runtime.settings.queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]

    assert attributes["VisibilityTimeout"] == str(-(-1800 // TIME_FACTOR))
    assert stack.time_note().startswith(f"time runs {TIME_FACTOR}x faster than on AWS")


def test_fail_shas_control_refuses_a_short_sha(stack: LocalStack) -> None:
    status, answer = _fail_shas(stack, ["abc1234"])

    assert status == 400
    assert "40-hex" in answer["error"]


def test_redeploy_failed_by_ecs_ends_failed_and_the_previous_commit_keeps_serving(
    stack: LocalStack,
) -> None:
    branch, good, bad = "feature/rollback", fake_sha("rollback-good"), fake_sha("rollback-bad")
    slug = slug_of(stack, branch)
    push(stack, branch, good)
    ready = wait_for_environment(stack, slug, lambda r: r.get("status") in ("ready", "failed"))
    assert ready["status"] == "ready", ready.get("reason")
    service_name = ready.get("service_name") or stack.runtime.store.get(slug).service_name
    calls = EcsCalls(stack)
    assert _fail_shas(stack, [bad])[0] == 200
    try:
        started = time.monotonic()
        push(stack, branch, bad)
        record = wait_for_environment(
            stack, slug, lambda r: r.get("status") == "failed" and r.get("sha") == bad
        )
        took = time.monotonic() - started
        deployed_once = calls.about(bad)
        # The rollback's own events, a reaper sweep, and time for every backoff there is
        # (2 s at this clock is 10 minutes of AWS's).
        assert get_json(f"{stack.stub_url}/_local/reap", method="POST", body={})[0] == 200
        time.sleep(2.0)
        afterwards = calls.about(bad)
        service = (
            _aws(stack)
            .client("ecs")
            .describe_services(cluster=stack.runtime.settings.cluster, services=[service_name])[
                "services"
            ][0]
        )
        definition = (
            _aws(stack)
            .client("ecs")
            .describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        )
    finally:
        _fail_shas(stack, [])

    environment = {
        v["name"]: v["value"] for v in definition["containerDefinitions"][0]["environment"]
    }
    assert record["status"] == "failed"
    assert "circuit breaker" in record["reason"]
    assert took < 60
    assert record["deployed_sha"] == good
    assert environment["COMMIT_SHA"] == good  # the rollback: the previous commit serves
    assert deployed_once == ["RegisterTaskDefinition", "UpdateService"]  # ECS rolled it back
    assert afterwards == deployed_once  # and it is never deployed again


def test_repository_port_3000_gets_through_the_security_groups(stack: LocalStack) -> None:
    sha = fake_sha("port-3000")
    status, _ = get_json(
        f"{stack.stub_url}/_local/github/files",
        method="PUT",
        body={
            "repository": REPOSITORY,
            "path": "branchenv.yml",
            "content": "service:\n  container_port: 3000\n",
            "ref": sha,
        },
    )
    assert status == 200
    push(stack, "feature/port-3000", sha)
    slug = slug_of(stack, "feature/port-3000")

    record = wait_for_environment(stack, slug, lambda r: r.get("status") in ("ready", "failed"))

    assert record["status"] == "ready", record.get("reason")
    assert stack.strict is not None
    group = stack.runtime.store.get(slug).target_group_arn
    assert stack.strict.port_reachable(group, 3000)
