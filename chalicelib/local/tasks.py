"""Local tasks: what the stand-in ECS really runs when a service's deployment starts.

For each task ECS would start, :class:`LocalTasks` launches a process, gives it a private
IP in the task subnet (as Fargate gives each awsvpc task an ENI) and registers that IP and
the container port in the service's target group with moto's RegisterTargets, as ECS does
for a service behind a load balancer ("Use load balancing to distribute Amazon ECS service
traffic", ECS developer guide). :class:`TaskNetwork` is the local VPC: it maps each task's
(private IP, container port) to the loopback address its process really listens on, so the
local load balancer (chalicelib/local/alb.py) reaches ``10.0.10.7:8080`` the way the ALB
would, and only where the security groups let it.

Two launchers:

- :class:`InProcessLauncher` (no Docker engine, as on CI): a small built-in preview app on
  a free loopback port. The health check path answers ``200 ok``; every other path a page
  naming the repository, branch, commit and preview URL, and the NAMES of the task's
  environment variables and secrets (never a value).
- :class:`DockerLauncher` (where ``docker info`` answers): ``docker run`` of the image given
  by ``branchenv local --image IMAGE`` with the task definition's environment (secrets
  resolved from the stand-in Secrets Manager, as ECS resolves ``valueFrom``), its container
  port published on loopback only.

Never imported by the deployed Lambda.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SHUTDOWN_POLL_SECONDS = 0.05  # how soon serve_forever notices shutdown()
TASK_SUBNET = ipaddress.ip_network("10.0.10.0/24")
DOCKER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class TaskSpec:
    """What a task runs, read from its task definition's first container."""

    task_definition: str
    image: str
    container_port: int
    environment: dict[str, str]
    secrets: dict[str, str]  # name -> valueFrom (an ARN); never a value

    @classmethod
    def from_task_definition(cls, definition: Mapping[str, Any], port: int) -> TaskSpec:
        container: Mapping[str, Any] = next(iter(definition.get("containerDefinitions", [])), {})
        return cls(
            task_definition=str(definition.get("taskDefinitionArn", "")),
            image=str(container.get("image", "")),
            container_port=port,
            environment={
                str(v.get("name")): str(v.get("value", ""))
                for v in container.get("environment", [])
            },
            secrets={
                str(v.get("name")): str(v.get("valueFrom", ""))
                for v in container.get("secrets", [])
            },
        )


class Process(Protocol):
    """A running task's process: where it listens on loopback, and how to stop it."""

    host: str
    port: int

    def stop(self) -> None: ...


class Launcher(Protocol):
    def launch(self, spec: TaskSpec, *, health_path: str, repository: str) -> Process: ...


# --- the built-in preview app ----------------------------------------------------------


def preview_page(spec: TaskSpec, repository: str) -> str:
    """The built-in app's page: its first line names the preview; names only, no values."""
    env = spec.environment
    branch, sha, url = env.get("BRANCH", ""), env.get("COMMIT_SHA", ""), env.get("PREVIEW_URL", "")
    first = f"preview of {repository} branch {branch} at commit {sha}"
    names = sorted(env)
    rows = "".join(f"<li><code>{html.escape(n)}</code></li>" for n in names)
    secrets = "".join(f"<li><code>{html.escape(n)}</code></li>" for n in sorted(spec.secrets))
    return (
        f"<!doctype html><title>{html.escape(first)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<h1>{html.escape(branch)}</h1>\n"
        "<dl>"
        f"<dt>repository</dt><dd>{html.escape(repository)}</dd>"
        f"<dt>branch</dt><dd>{html.escape(branch)}</dd>"
        f"<dt>commit</dt><dd><code>{html.escape(sha)}</code></dd>"
        f'<dt>preview URL</dt><dd><a href="{html.escape(url)}">{html.escape(url)}</a></dd>'
        "</dl>\n"
        f"<h2>environment variables</h2><ul>{rows}</ul>\n"
        f"<h2>secrets</h2><ul>{secrets or '<li>none</li>'}</ul>\n"
        "<p>Served by branchenv's built-in preview app (no Docker engine answered).</p>\n"
    )


class PreviewApp:
    """The built-in preview app, in-process on a free loopback port."""

    def __init__(self, spec: TaskSpec, *, health_path: str, repository: str) -> None:
        self.spec = spec
        self.requests = 0  # requests other than health checks: "was this task reached?"
        self.health_checks = 0
        page = preview_page(spec, repository).encode()
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == health_path and health_path != "/":
                    app.health_checks += 1
                    self._answer(b"ok\n", "text/plain; charset=utf-8")
                    return
                if path == health_path:
                    app.health_checks += 1
                else:
                    app.requests += 1
                self._answer(page, "text/html; charset=utf-8")

            def do_HEAD(self) -> None:
                self.do_GET()

            def _answer(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("preview app: " + format, *args)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = LOOPBACK, int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(SHUTDOWN_POLL_SECONDS,),
            name=f"preview-app-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


class InProcessLauncher:
    """Runs every task as the built-in preview app."""

    def __init__(self) -> None:
        self.launched: list[PreviewApp] = []

    def launch(self, spec: TaskSpec, *, health_path: str, repository: str) -> Process:
        app = PreviewApp(spec, health_path=health_path, repository=repository)
        self.launched.append(app)
        return app


# --- Docker --------------------------------------------------------------------------------

Run = Callable[..., "subprocess.CompletedProcess[str]"]


def docker_available(run: Run = subprocess.run) -> bool:
    """Whether a Docker engine answers ``docker info``."""
    try:
        answer = run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.returncode == 0 and bool(answer.stdout.strip())


@dataclass
class DockerContainer:
    container_id: str
    host: str
    port: int
    run: Run = field(repr=False)

    def stop(self) -> None:
        self.run(
            ["docker", "rm", "--force", self.container_id],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_SECONDS * 3,
            check=False,
        )


class DockerLauncher:
    """Runs ``image`` (the user's own application image) for every task."""

    def __init__(
        self, image: str, secret_value: Callable[[str], str | None], run: Run = subprocess.run
    ) -> None:
        self.image, self._secret_value, self._run = image, secret_value, run

    def launch(self, spec: TaskSpec, *, health_path: str, repository: str) -> Process:
        env = dict(spec.environment)
        for name, value_from in spec.secrets.items():
            value = self._secret_value(value_from)
            if value is not None:
                env[name] = value
        command = ["docker", "run", "--detach", "--rm", "--label", "branchenv.local=true"]
        command += ["--publish", f"{LOOPBACK}::{spec.container_port}"]
        for name in env:
            command += ["--env", name]  # values through the environment, never argv
        command.append(self.image)
        started = self._run(
            command,
            capture_output=True,
            text=True,
            env={**_base_env(), **env},
            timeout=DOCKER_TIMEOUT_SECONDS * 6,
            check=False,
        )
        if started.returncode != 0:
            raise TaskFailed(f"docker run {self.image} failed: {started.stderr.strip()[:300]}")
        container = started.stdout.strip()
        where = self._run(
            ["docker", "port", container, f"{spec.container_port}/tcp"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_SECONDS,
            check=False,
        )
        address = where.stdout.strip().splitlines()[0] if where.stdout.strip() else ""
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            DockerContainer(container, LOOPBACK, 0, self._run).stop()
            raise TaskFailed(f"docker published no port for {spec.container_port}/tcp")
        return DockerContainer(container, host or LOOPBACK, int(port), self._run)


def _base_env() -> dict[str, str]:
    """What the docker CLI needs of this process's environment (nothing of branchenv's)."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST")}


class TaskFailed(Exception):
    """A task could not be started (ECS would report it STOPPED with this reason)."""


# --- the local VPC and the tasks of each service -------------------------------------------


class TaskNetwork:
    """(private IP, port) of each running task → where its process listens on loopback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, int], tuple[str, int]] = {}

    def attach(self, address: str, port: int, host: str, real_port: int) -> None:
        with self._lock:
            self._routes[(address, port)] = (host, real_port)

    def detach(self, address: str, port: int) -> None:
        with self._lock:
            self._routes.pop((address, port), None)

    def resolve(self, address: str, port: int) -> tuple[str, int] | None:
        with self._lock:
            return self._routes.get((address, port))


@dataclass
class Task:
    """One running local task of a service's deployment."""

    service_arn: str
    task_definition: str
    address: str
    port: int
    target_groups: tuple[str, ...]
    process: Process


class LocalTasks:
    """Starts, registers, deregisters and stops the tasks of managed services."""

    def __init__(
        self,
        clients: Any,
        launcher: Launcher,
        network: TaskNetwork,
        *,
        repository_of: Callable[[Mapping[str, str]], str] = lambda env: "",
        on_deregister: Callable[[str, str, int], None] = lambda group, address, port: None,
    ) -> None:
        self._ecs, self._elbv2 = clients.client("ecs"), clients.client("elbv2")
        self.launcher, self.network = launcher, network
        self._repository_of, self._on_deregister = repository_of, on_deregister
        self._lock = threading.Lock()
        self._tasks: list[Task] = []
        self._serial = 0

    def start(self, service: Mapping[str, Any]) -> list[Task]:
        """Run the service's desired count of tasks of its current task definition."""
        definition = self._ecs.describe_task_definition(
            taskDefinition=str(service["taskDefinition"])
        )["taskDefinition"]
        balancers = [b for b in service.get("loadBalancers", []) if b.get("targetGroupArn")]
        port = int(balancers[0].get("containerPort", 80)) if balancers else 80
        spec = TaskSpec.from_task_definition(definition, port)
        groups = tuple(str(b["targetGroupArn"]) for b in balancers)
        health_path = self._health_path(groups)
        started: list[Task] = []
        for _ in range(int(service.get("desiredCount", 1))):
            process = self.launcher.launch(
                spec, health_path=health_path, repository=self._repository_of(spec.environment)
            )
            task = Task(
                str(service["serviceArn"]),
                spec.task_definition,
                self._next_address(str(service["serviceArn"])),
                port,
                groups,
                process,
            )
            self.network.attach(task.address, port, process.host, process.port)
            for group in groups:
                self._elbv2.register_targets(
                    TargetGroupArn=group, Targets=[{"Id": task.address, "Port": port}]
                )
            with self._lock:
                self._tasks.append(task)
            started.append(task)
            log.info("tasks: %s runs at %s:%d", service.get("serviceName"), task.address, port)
        return started

    def of_service(self, service_arn: str) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks if t.service_arn == service_arn]

    def services(self) -> set[str]:
        with self._lock:
            return {t.service_arn for t in self._tasks}

    def stop(self, tasks: list[Task]) -> None:
        """Deregister each task from its target groups, then stop its process."""
        for task in tasks:
            with self._lock:
                if task not in self._tasks:
                    continue
                self._tasks.remove(task)
            for group in task.target_groups:
                try:
                    self._elbv2.deregister_targets(
                        TargetGroupArn=group, Targets=[{"Id": task.address, "Port": task.port}]
                    )
                except Exception as exc:  # the group is already gone: nothing to deregister
                    log.debug("tasks: deregister from %s: %s", group, exc)
                self._on_deregister(group, task.address, task.port)
            self.network.detach(task.address, task.port)
            try:
                task.process.stop()
            except Exception as exc:
                log.warning("tasks: could not stop the task at %s: %s", task.address, exc)

    def stop_all(self) -> None:
        with self._lock:
            tasks = list(self._tasks)
        self.stop(tasks)

    def _health_path(self, groups: tuple[str, ...]) -> str:
        if not groups:
            return "/"
        described = self._elbv2.describe_target_groups(TargetGroupArns=[groups[0]])
        return str(described["TargetGroups"][0].get("HealthCheckPath") or "/")

    def _next_address(self, service_arn: str) -> str:
        """A private IP in the task subnet no running task holds (Fargate: one ENI each)."""
        with self._lock:
            taken = {t.address for t in self._tasks}
            self._serial += 1
            seed = int(hashlib.sha256(f"{service_arn}:{self._serial}".encode()).hexdigest(), 16)
        for step in range(250):
            address = str(TASK_SUBNET.network_address + (seed + step) % 250 + 4)
            if address not in taken:
                return address
        raise TaskFailed("the task subnet has no free address")
