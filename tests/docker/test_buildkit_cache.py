"""terraform/buildspec.yml's own commands with BuildKit against a local registry: the second
build of an unchanged branch rebuilds no layer, and a branch's first build reads the
default branch's cache.

Each build runs buildspec.yml's ``pre_build`` and ``build`` commands in one bash, stopping
at the first that fails, as CodeBuild runs them ("Build specification reference for
CodeBuild": a phase's commands share one shell), on a fresh BuildKit builder, so any
layer it reuses came from the registry cache (``--cache-from type=registry``), as on
CodeBuild where every build starts on a new host. The registry is ``registry:2`` in a
container on a loopback port, standing in for the environment's ECR repository. What
differs from CodeBuild, each said where it is done: the ECR login is left out (the local
registry takes anonymous pushes), the builder gets its own name and ``network=host`` (so
the BuildKit container reaches the registry on the host's loopback), and buildx keeps its
builder list in a scratch folder (``BUILDX_CONFIG``), so the machine's current builder is
left alone.

Needs a Docker engine with buildx and access to Docker Hub (registry:2, busybox); skipped
with the reason where ``docker info`` fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.terraform.hcl import TERRAFORM

pytestmark = pytest.mark.docker

BUILDSPEC = TERRAFORM / "buildspec.yml"
LOGIN = "aws ecr get-login-password"
CREATE_BUILDER = "docker buildx create --name branchenv --driver docker-container --use"
REPOSITORY = "shop"
DOCKERFILE = """\
FROM busybox:1.36
RUN echo "dependencies" > /dependencies && sleep 1
RUN echo "build" > /build
COPY app.txt /app/app.txt
RUN cat /app/app.txt > /app/served
"""
TIMEOUT_SECONDS = 600
# BuildKit's plain progress: "#7 [3/5] RUN echo ..." opens step 7, "#7 CACHED" reuses it.
STEP = re.compile(r"^#(\d+) \[(?:[\w-]+ )?(\d+)/(\d+)\] (.*)$")


def docker_problem() -> str | None:
    """Why the engine cannot run these tests, or None when it can."""
    if shutil.which("docker") is None:
        return "the docker client is not on PATH"
    for command, what in (
        (["docker", "info"], "no Docker engine answers `docker info`"),
        (["docker", "buildx", "version"], "`docker buildx` is not installed"),
    ):
        try:
            answer = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{what}: {exc}"
        if answer.returncode != 0:
            said = (answer.stderr.strip().splitlines() or [""])[-1]
            return f"{what}: {said}"
    return None


@dataclass
class Build:
    output: str  # BuildKit's plain progress and the commands' own output

    def steps(self) -> dict[str, bool]:
        """The Dockerfile's steps ("[2/5] RUN ...", FROM left out) → reused from cache."""
        opened: dict[str, str] = {}
        cached: set[str] = set()
        for line in self.output.splitlines():
            step = STEP.match(line.strip())
            if step and not step.group(4).startswith("FROM "):
                opened[step.group(1)] = f"[{step.group(2)}/{step.group(3)}] {step.group(4)}"
            elif re.fullmatch(r"#\d+ CACHED", line.strip()):
                cached.add(line.strip().split()[0][1:])
        return {label: number in cached for number, label in opened.items()}


class Builds:
    """buildspec.yml's commands run against ``registry`` from the ``context`` folder."""

    def __init__(self, registry: str, context: Path, scratch: Path) -> None:
        self.registry, self.context = registry, context
        self.builder = f"branchenv-test-{uuid.uuid4().hex[:8]}"
        self.environ = {
            **os.environ,
            "BUILDX_CONFIG": str(scratch / "buildx"),  # the machine's builders left alone
            "BUILDKIT_PROGRESS": "plain",  # one line per step event, "#n CACHED" included
            "AWS_REGION": "us-east-1",
        }
        self.script = self._script(yaml.safe_load(BUILDSPEC.read_text()))

    def _script(self, spec: Mapping[str, object]) -> str:
        phases = spec["phases"]
        assert isinstance(phases, dict)
        commands = [*phases["pre_build"]["commands"], *phases["build"]["commands"]]
        logins = [c for c in commands if c.startswith(LOGIN)]
        assert len(logins) == 1, "buildspec.yml logs in to ECR once"
        # The local registry takes anonymous pushes: no ECR login.
        commands = [c for c in commands if not c.startswith(LOGIN)]
        assert CREATE_BUILDER in commands, "buildspec.yml creates its BuildKit builder"
        # A name of its own, and the host's network so the builder reaches the registry
        # on loopback (docker buildx create, "--driver-opt network=host").
        own = f"docker buildx create --name {self.builder} --driver docker-container "
        own += "--driver-opt network=host --use"
        commands = [own if c == CREATE_BUILDER else c for c in commands]
        return "set -e\n" + "\n".join(commands) + "\n"

    def run(self, *, sha: str, branch_slug: str, default_slug: str = "main") -> Build:
        """One CodeBuild build of commit ``sha`` of branch ``branch_slug`` on a new builder,
        with the variables branchenv passes (chalicelib/aws/codebuild.py)."""
        variables = {
            "IMAGE_REPOSITORY_URI": f"{self.registry}/{REPOSITORY}",
            "IMAGE_SHA_TAG": sha,
            "IMAGE_BRANCH_TAG": f"branch-{branch_slug}",
            "IMAGE_DEFAULT_CACHE_TAG": f"cache-{default_slug}",
        }
        try:
            done = subprocess.run(
                ["bash", "-c", self.script],
                cwd=self.context,
                env={**self.environ, **variables},
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
        finally:
            self.remove_builder()
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        return Build(output)

    def remove_builder(self) -> None:
        """The next build starts on a builder with an empty cache, like a new CodeBuild host."""
        subprocess.run(
            ["docker", "buildx", "rm", self.builder],
            env=self.environ,
            capture_output=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    """registry:2 on a free 127.0.0.1 port: host:port."""
    problem = docker_problem()
    if problem is not None:
        pytest.skip(problem)
    name = f"branchenv-registry-{uuid.uuid4().hex[:8]}"
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "-p", "127.0.0.1::5000", "registry:2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        published = subprocess.run(
            ["docker", "port", name, "5000/tcp"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()[0]  # 127.0.0.1:<port>
        # "localhost": BuildKit pushes to a localhost registry over plain HTTP.
        address = "localhost:" + published.rsplit(":", 1)[1]
        _wait_for(f"http://{address}/v2/")
        yield address
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def builds(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    context = tmp_path_factory.mktemp("application")
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "app.txt").write_text("hello from a preview\n")
    return Builds(registry, context, tmp_path_factory.mktemp("buildx"))


@pytest.fixture(scope="module")
def first(builds: Builds) -> Build:
    """The default branch's first build: nothing cached yet, its cache written."""
    return builds.run(sha="a" * 40, branch_slug="main")


def tags(registry: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry}/v2/{REPOSITORY}/tags/list") as answer:
        listed: list[str] = json.load(answer)["tags"] or []
        return sorted(listed)


def test_the_first_build_builds_every_layer_and_writes_the_branch_cache(
    first: Build, registry: str
) -> None:
    steps = first.steps()
    assert len(steps) == DOCKERFILE.count("\n") - 1  # every step but FROM
    assert not any(steps.values()), steps
    assert {"a" * 40, "branch-main", "cache-main"} <= set(tags(registry))


def test_the_second_build_of_an_unchanged_branch_reuses_every_layer(
    first: Build, builds: Builds
) -> None:
    second = builds.run(sha="b" * 40, branch_slug="main")

    steps = second.steps()
    assert steps and all(steps.values()), steps


def test_a_new_branch_first_build_reads_the_default_branch_cache(
    first: Build, builds: Builds, registry: str
) -> None:
    feature = builds.run(sha="c" * 40, branch_slug="feature-cache")

    steps = feature.steps()
    assert steps and all(steps.values()), steps
    assert {"branch-feature-cache", "cache-feature-cache"} <= set(tags(registry))
