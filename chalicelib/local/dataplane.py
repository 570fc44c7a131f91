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
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from chalicelib.local.health import HealthChecker
from chalicelib.local.tasks import LocalTasks, Task, TaskFailed

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

    def reconcile(self, services: Sequence[Mapping[str, Any]]) -> None:
        """Stop the tasks of services that are gone (deleted, draining) or scaled to 0."""
        running = {str(s["serviceArn"]) for s in services if int(s.get("desiredCount", 0)) > 0}
        for service_arn in self.tasks.services() - running:
            log.info("data plane: stopping the tasks of %s", service_arn.rsplit("/", 1)[-1])
            self.tasks.stop(self.tasks.of_service(service_arn))
