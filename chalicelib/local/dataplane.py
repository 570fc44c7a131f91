"""The stand-in ECS's side of the data plane: a deployment's tasks and when they are healthy.

The event relay (chalicelib/local/relay.py) asks :class:`DataPlane` to start the tasks of
each new deployment and reports "deployment completed" only once every one of them is
healthy in every target group of the service, as ECS does for a service behind a load
balancer: its deployment is not complete until the new tasks pass the load balancer's
health checks and the old tasks are drained and stopped ("Amazon ECS service deployment
state change events", ECS developer guide). A task that turns unhealthy fails the
deployment (the circuit breaker's "task failed ELB health checks"). A service that is
deleted or scaled to zero has its tasks stopped. Never imported by the deployed Lambda.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.local.alb import LocalLoadBalancer, Waker
from chalicelib.local.health import HealthChecker, PortReachable
from chalicelib.local.tasks import (
    DockerLauncher,
    InProcessLauncher,
    Launcher,
    LocalTasks,
    Task,
    TaskFailed,
    TaskNetwork,
    docker_available,
)

log = logging.getLogger(__name__)

Verdict = Literal["healthy", "unhealthy"] | None


class DataPlane:
    """Starts, follows and stops the local tasks of managed ECS services."""

    def __init__(self, tasks: LocalTasks, checker: HealthChecker) -> None:
        self.tasks, self.checker = tasks, checker

    def start(self, service: Mapping[str, Any]) -> list[Task] | None:
        """The tasks of the service's new deployment, or None if they could not start."""
        try:
            started = self.tasks.start(service)
        except TaskFailed as exc:
            log.warning("data plane: %s: %s", service.get("serviceName"), exc)
            return None
        for task in started:
            for group in task.target_groups:
                self.checker.watch(group, task.address, task.port)
        return started

    def verdict(self, started: Sequence[Task]) -> Verdict:
        """healthy once every task is, unhealthy as soon as one is, else None (waiting)."""
        states = [
            self.checker.state(group, task.address, task.port)
            for task in started
            for group in task.target_groups
        ]
        if any(state == "unhealthy" for state in states):
            return "unhealthy"
        if all(state == "healthy" for state in states):
            return "healthy"
        return None

    def keep_only(self, service_arn: str, started: Sequence[Task]) -> None:
        """The deployment completed: the service's other (older) tasks are stopped."""
        self.tasks.stop([t for t in self.tasks.of_service(service_arn) if t not in started])

    def stop(self, started: Sequence[Task]) -> None:
        self.tasks.stop(list(started))

    def reconcile(
        self,
        services: Sequence[Mapping[str, Any]],
        settled: Callable[[Mapping[str, Any]], bool] = lambda service: False,
    ) -> None:
        """Stop the tasks of services that are gone (deleted, draining) or scaled to 0, and
        start those of a ``settled`` service (its deployment completed) scaled back up from
        0 with no task: ECS's scheduler starts tasks within the same deployment, no new one
        (a sleeping preview's wake: "Amazon ECS services", desired count)."""
        scaled = [s for s in services if int(s.get("desiredCount", 0)) > 0]
        running = {str(s["serviceArn"]) for s in scaled}
        for service_arn in self.tasks.services() - running:
            log.info("data plane: stopping the tasks of %s", service_arn.rsplit("/", 1)[-1])
            self.tasks.stop(self.tasks.of_service(service_arn))
        for service in scaled:
            if service.get("status", "ACTIVE") != "ACTIVE":
                continue  # a deleted service drains: ECS starts nothing for it
            if not self.tasks.of_service(str(service["serviceArn"])) and settled(service):
                log.info("data plane: %s scaled up again", service.get("serviceName"))
                self.start(service)


@dataclass
class Parts:
    """What :func:`start_data_plane` started, and how to stop it (in ``stops`` order)."""

    data_plane: DataPlane
    balancer: LocalLoadBalancer
    stops: list[tuple[str, Callable[[], None]]]


def start_data_plane(
    clients: Any,
    *,
    launcher: Launcher,
    listener_arns: Sequence[str],
    port: int,
    scale: Callable[[float], float],
    port_reachable: PortReachable,
    repository_of: Callable[[Mapping[str, str]], str],
    waker: Waker | None = None,
) -> Parts:
    """Start the health checks and the load balancer on ``port`` over moto's ``clients``
    (unhooked: they stand in for AWS itself); ``waker`` is the waker target groups' Lambda
    function. ``stops`` stops them, newest last, after stopping every task: append it to a
    stack's stops, which run newest first."""
    network = TaskNetwork()
    checker = HealthChecker(clients, network, scale=scale, port_reachable=port_reachable)
    tasks = LocalTasks(
        clients, launcher, network, repository_of=repository_of, on_deregister=checker.forget
    )
    stops: list[tuple[str, Callable[[], None]]] = []
    listeners = tuple(listener_arns)
    balancer = LocalLoadBalancer(
        clients,
        checker,
        network,
        listener_arns=lambda: listeners,
        port=port,
        scale=scale,
        port_reachable=port_reachable,
        waker=waker,
    )
    try:
        balancer.start()
        stops.append(("local load balancer", balancer.stop))
        checker.start()
        stops.append(("health checks", checker.stop))
        stops.append(("local tasks", tasks.stop_all))
    except BaseException:
        for _, stop in reversed(stops):
            stop()
        raise
    return Parts(DataPlane(tasks, checker), balancer, stops)


def choose_launcher(image: str | None, clients: Any) -> Launcher:
    """Docker for ``image`` where an engine answers ``docker info``, else the built-in app.
    Secrets are read from the stand-in Secrets Manager, as ECS resolves ``valueFrom``."""
    if image and docker_available():
        log.info("tasks run %s under Docker", image)

        def secret_value(value_from: str) -> str | None:
            try:
                answer = clients.client("secretsmanager").get_secret_value(SecretId=value_from)
            except Exception as exc:
                log.warning("tasks: secret %s unreadable (%s)", value_from, type(exc).__name__)
                return None
            value = answer.get("SecretString")
            return str(value) if value is not None else None

        return DockerLauncher(image, secret_value)
    if image:
        log.warning("no Docker engine answers `docker info`: tasks run the built-in preview app")
    return InProcessLauncher()
