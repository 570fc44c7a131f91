"""Preview URLs answer locally (issue 16): through ``branchenv local``'s load balancer a
pushed branch serves its commit, a second push the new one, an unknown host and a deleted
preview the listener's 404, and a task on a port the security groups do not open is never
reached (503 once ECS's circuit breaker has stopped it; the environment fails).
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.local.alb import ERROR_PAGES
from chalicelib.local.bootstrap import NOT_FOUND_BODY
from chalicelib.local.demo import fetch_preview
from chalicelib.local.stack import LocalStack
from chalicelib.local.tasks import InProcessLauncher, docker_available
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import (
    REPOSITORY,
    delete,
    get_json,
    push,
    slug_of,
    stack_options,
    wait_for_environment,
)

pytestmark = pytest.mark.e2e
SETTLED = ("ready", "failed")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(stack_options(app_name="previews")) as running:
        yield running


def _settle(stack: LocalStack, branch: str, sha: str) -> dict[str, Any]:
    push(stack, branch, sha)
    return wait_for_environment(
        stack,
        slug_of(stack, branch),
        lambda r: r.get("status") in SETTLED and r.get("sha") == sha,
    )


def _port(stack: LocalStack) -> int:
    port = urllib.parse.urlsplit(stack.alb_url).port
    assert port is not None
    return port


def test_a_pushed_branch_answers_at_its_url_with_its_commit(stack: LocalStack) -> None:
    sha = fake_sha("preview-one")

    record = _settle(stack, "feature/preview", sha)
    status, first_line = fetch_preview(record["url"])

    slug = slug_of(stack, "feature/preview")
    assert record["status"] == "ready", record.get("reason")
    assert record["url"] == f"http://{slug}.preview.localhost:{_port(stack)}"
    assert status == 200
    assert first_line == f"preview of {REPOSITORY} branch feature/preview at commit {sha}"


def test_slack_and_github_are_given_the_url_with_the_port(stack: LocalStack) -> None:
    sha = fake_sha("told")
    record = _settle(stack, "feature/told", sha)

    _, github = get_json(f"{stack.stub_url}/_local/github")
    _, slack = get_json(f"{stack.stub_url}/_local/slack")

    told = [
        status["environment_url"]
        for deployment in github["deployments"]
        if deployment["sha"] == sha
        for status in deployment["statuses"]
        if status["state"] == "success"
    ]
    assert told == [record["url"]]
    assert any(record["url"] in str(call) for call in slack["calls"])


def test_the_page_names_variables_and_secrets_but_never_their_values(stack: LocalStack) -> None:
    record = _settle(stack, "feature/preview-page", fake_sha("page"))
    host = urllib.parse.urlsplit(record["url"]).netloc

    body = _get(stack, host, "/")

    assert "COMMIT_SHA" in body and "PREVIEW_URL" in body and "BRANCH" in body
    assert record["url"] in body  # the preview URL, as the task's PREVIEW_URL says
    assert "feature-preview-page" not in body.replace(record["url"], "")  # no BRANCH_SLUG value


def test_a_second_push_serves_the_new_commit_and_stops_the_old_task(stack: LocalStack) -> None:
    first, second = fake_sha("again-1"), fake_sha("again-2")
    _settle(stack, "feature/again", first)

    record = _settle(stack, "feature/again", second)

    assert record["status"] == "ready", record.get("reason")
    answers = {fetch_preview(record["url"]) for _ in range(4)}  # every target, in turn
    assert answers == {(200, f"preview of {REPOSITORY} branch feature/again at commit {second}")}
    running = [
        app.spec.environment.get("COMMIT_SHA")
        for app in _launched(stack)
        if app.spec.environment.get("BRANCH") == "feature/again" and _serving(app)
    ]
    assert running == [second]


def test_an_unknown_host_gets_the_listeners_404(stack: LocalStack) -> None:
    status, first_line = fetch_preview(f"http://nobody-here.preview.localhost:{_port(stack)}/")

    assert (status, first_line) == (404, NOT_FOUND_BODY)


def test_host_names_match_case_insensitively_and_without_the_port(stack: LocalStack) -> None:
    sha = fake_sha("case")
    record = _settle(stack, "feature/case", sha)
    host = urllib.parse.urlsplit(record["url"]).hostname
    assert host is not None

    body = _get(stack, host.upper(), "/some/page")

    assert sha in body


def test_a_deleted_preview_answers_404_and_its_task_is_stopped(stack: LocalStack) -> None:
    record = _settle(stack, "feature/short-lived", fake_sha("short"))
    assert fetch_preview(record["url"])[0] == 200

    delete(stack, "feature/short-lived")
    gone = wait_for_environment(
        stack, slug_of(stack, "feature/short-lived"), lambda r: r.get("status") == "deleted"
    )

    assert gone["status"] == "deleted"
    assert fetch_preview(record["url"]) == (404, NOT_FOUND_BODY)

    def still_serving() -> list[object]:
        return [
            app
            for app in _launched(stack)
            if app.spec.environment.get("BRANCH") == "feature/short-lived" and _serving(app)
        ]

    # ECS stops a deleted service's tasks after DeleteService answers (the service drains;
    # "DeleteService", ECS API reference), and the local ECS on its next look at the
    # services: a few seconds at most, even on a loaded machine.
    deadline = time.monotonic() + 10
    while still_serving() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not still_serving()


def test_a_port_the_security_groups_do_not_open_is_never_reached(stack: LocalStack) -> None:
    ec2 = stack.clients.client("ec2") if stack.clients else None
    assert ec2 is not None and stack.infra is not None
    task_sg = stack.infra.task_security_group_id
    alb_sg = stack.clients.client("elbv2").describe_load_balancers()["LoadBalancers"][0][
        "SecurityGroups"
    ][0]
    opened = _from(alb_sg, *stack.infra.container_ports)
    sha = fake_sha("closed-port")
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
    # Someone narrowed the tasks' security group to 8080 after Terraform opened the range.
    ec2.revoke_security_group_ingress(GroupId=task_sg, IpPermissions=[opened])
    ec2.authorize_security_group_ingress(GroupId=task_sg, IpPermissions=[_from(alb_sg, 8080, 8080)])
    try:
        record = _settle(stack, "feature/closed-port", sha)
        answer = fetch_preview(record["url"])
    finally:
        ec2.revoke_security_group_ingress(
            GroupId=task_sg, IpPermissions=[_from(alb_sg, 8080, 8080)]
        )
        ec2.authorize_security_group_ingress(GroupId=task_sg, IpPermissions=[opened])

    assert record["status"] == "failed"
    assert "circuit breaker" in record["reason"]
    assert record.get("ready_at") is None
    assert answer == (503, ERROR_PAGES[503])
    tried = [a for a in _launched(stack) if a.spec.environment.get("COMMIT_SHA") == sha]
    assert tried and all(app.requests == 0 and app.health_checks == 0 for app in tried)


@pytest.mark.skipif(
    shutil.which("docker") is None or not docker_available(),
    reason="no Docker engine answers `docker info` here: the built-in preview app is tested",
)
def test_a_real_image_runs_under_docker() -> None:
    """``--image`` (BRANCHENV_TEST_IMAGE, default an nginx demo page on port 80) runs with
    the task definition's environment and port, published on loopback only."""
    image = os.environ.get("BRANCHENV_TEST_IMAGE", "nginxdemos/hello:plain-text")
    port = int(os.environ.get("BRANCHENV_TEST_IMAGE_PORT", "80"))
    sha = fake_sha("docker")
    with LocalStack(stack_options(app_name="docker", image=image)) as running:
        get_json(
            f"{running.stub_url}/_local/github/files",
            method="PUT",
            body={
                "repository": REPOSITORY,
                "path": "branchenv.yml",
                "content": f"service:\n  container_port: {port}\n",
                "ref": sha,
            },
        )
        record = _settle(running, "feature/docker", sha)
        status, _ = fetch_preview(record["url"])
    assert record["status"] == "ready", record.get("reason")
    assert status == 200


# --- helpers ------------------------------------------------------------------------------


def _from(group: str, low: int, high: int) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": low,
        "ToPort": high,
        "UserIdGroupPairs": [{"GroupId": group}],
    }


def _get(stack: LocalStack, host: str, path: str) -> str:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", _port(stack), timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        answer = connection.getresponse()
        assert answer.status == 200
        return answer.read().decode()
    finally:
        connection.close()


def _launched(stack: LocalStack) -> list[Any]:
    assert stack.data_plane is not None
    launcher = stack.data_plane.tasks.launcher
    assert isinstance(launcher, InProcessLauncher)
    return list(launcher.launched)


def _serving(app: Any) -> bool:
    """Whether the preview app's server still accepts connections."""
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((app.host, app.port)) == 0
