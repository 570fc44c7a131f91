"""Local tasks: the built-in preview app's page names variables and secrets but never their
values, and Docker runs the user's image with the task's environment passed outside argv
and its port published on loopback only (a fake ``run`` stands in for the docker CLI)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from chalicelib.local.tasks import (
    DockerLauncher,
    TaskFailed,
    TaskSpec,
    docker_available,
    preview_page,
)

SPEC = TaskSpec(
    task_definition="arn:aws:ecs:us-east-1:123456789012:task-definition/shop:3",
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:abc",
    container_port=3000,
    environment={"COMMIT_SHA": "abc123", "BRANCH": "feature/x", "API_TOKEN": "t0ps3cret"},
    secrets={"DB_PASSWORD": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"},
)


class FakeDocker:
    """Answers the docker CLI calls LocalTasks makes, and remembers them."""

    def __init__(self, *, published: str = "127.0.0.1:49153\n", returncode: int = 0) -> None:
        self.calls: list[tuple[list[str], dict[str, str] | None]] = []
        self.published, self.returncode = published, returncode

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((command, kwargs.get("env")))
        out = {"run": "c0ffee\n", "port": self.published, "info": "27.0\n"}.get(command[1], "")
        code = self.returncode if command[1] in ("run", "info") else 0
        return subprocess.CompletedProcess(command, code, out, "boom" if code else "")


def test_the_page_names_the_preview_and_only_the_names_of_variables_and_secrets() -> None:
    page = preview_page(SPEC, "octo-org/shop")

    assert page.splitlines()[0].endswith(
        "<title>preview of octo-org/shop branch feature/x at commit abc123</title>"
    )
    assert "API_TOKEN" in page and "DB_PASSWORD" in page
    assert "t0ps3cret" not in page and "secretsmanager" not in page


def test_docker_runs_the_image_with_values_outside_argv_on_loopback() -> None:
    docker = FakeDocker()
    launcher = DockerLauncher("shop:dev", lambda arn: "hunter2", run=docker)

    container = launcher.launch(SPEC, health_path="/health", repository="octo-org/shop")

    (run, env), (port, _) = docker.calls
    assert run[:2] == ["docker", "run"] and run[-1] == "shop:dev"
    assert "127.0.0.1::3000" in run
    assert not any("t0ps3cret" in part or "hunter2" in part for part in run)
    assert env is not None and env["API_TOKEN"] == "t0ps3cret" and env["DB_PASSWORD"] == "hunter2"
    assert port == ["docker", "port", "c0ffee", "3000/tcp"]
    assert (container.host, container.port) == ("127.0.0.1", 49153)
    container.stop()
    assert docker.calls[-1][0] == ["docker", "rm", "--force", "c0ffee"]


def test_a_failed_docker_run_is_a_task_that_failed_to_start() -> None:
    launcher = DockerLauncher("shop:dev", lambda arn: None, run=FakeDocker(returncode=125))

    with pytest.raises(TaskFailed, match="docker run shop:dev failed"):
        launcher.launch(SPEC, health_path="/", repository="octo-org/shop")


def test_docker_is_available_only_when_docker_info_answers() -> None:
    def missing(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("docker")

    assert docker_available(FakeDocker())
    assert not docker_available(FakeDocker(returncode=1))
    assert not docker_available(missing)
