"""A small world for lifecycle tests: real payloads in, the worker and converge against
moto (made strict by tests/conftest.py's ``clients``), AWS's own events played back, and
the leak audit.

Nothing here is patched: the Runtime is built around moto-backed clients and handed to
the same worker function the Lambda handler calls. Time is the strict layer's clock: when
converge waits (RetryLater), the world lets the worker's backoff pass on that clock and
delivers the message again, as Lambda's SQS event source would, without sleeping.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.inventory import Inventory
from chalicelib.domain.environments import Environment
from chalicelib.domain.messages import BranchEvent
from chalicelib.domain.names import EnvironmentNames, names_for
from chalicelib.domain.resources import ManagedResource
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge import RetryLater
from chalicelib.handlers.webhooks import parse
from chalicelib.handlers.worker import (
    DEFAULT_MAX_RECEIVE_COUNT,
    Delivery,
    backoff_seconds,
    handle_body,
    handle_delivery,
)
from chalicelib.runtime import Runtime
from tests.conftest import load_event, strict_clock_of
from tests.integration.images import push_test_image

REPOSITORY = "baxterthehacker/public-repo"
PUSH = "github/push.webhooks-js.branch-update.payload"
CREATE = "github/create.branch.derived"
DELETE = "github/delete.branch.derived"
ROLLBACK_REASON = "ECS deployment circuit breaker: tasks failed to start."
_deliveries = itertools.count(1)


def sha_of(n: int) -> str:
    return f"{n:040x}"


@dataclass
class World:
    """One installation in moto, driven the way GitHub and AWS would drive it."""

    settings: Settings
    clients: ClientFactory
    runtime: Runtime = field(init=False)
    clock: float = 1_700_000_000.0

    waited: float = 0.0  # seconds of backoff the world let pass while converge waited
    while_waiting: Callable[[], None] | None = None  # what AWS does during each wait
    _completed: dict[str, str] = field(default_factory=dict)  # branch → last completed TD

    def __post_init__(self) -> None:
        self.runtime = Runtime(self.settings, self.clients)
        # AWS's own side (ECS rolling a service back): clients of their own, so what AWS
        # does is never counted as a call branchenv made.
        self.aws_side = ClientFactory(
            self.settings.region, self.settings.aws_endpoint_url, session=self.clients.session
        )

    # -- GitHub's side

    def names(self, branch: str) -> EnvironmentNames:
        s = self.settings
        return names_for(s.app_name, REPOSITORY, branch, s.preview_domain)

    def push(
        self, branch: str, sha: str, *, at: float | None = None, delivery: str | None = None
    ) -> BranchEvent:
        payload = load_event(PUSH)
        payload["ref"] = f"refs/heads/{branch}"
        payload["after"] = sha
        payload["head_commit"]["id"] = sha
        payload["repository"]["pushed_at"] = int(self._tick(at))
        return self._parse("push", payload, delivery)

    def create(self, branch: str, *, at: float | None = None) -> BranchEvent:
        payload = load_event(CREATE)
        payload["ref"] = branch
        payload["repository"]["full_name"] = REPOSITORY
        payload["repository"]["pushed_at"] = _iso(self._tick(at))
        return self._parse("create", payload, None)

    def delete(self, branch: str, *, at: float | None = None) -> BranchEvent:
        payload = load_event(DELETE)
        payload["ref"] = branch
        payload["repository"]["full_name"] = REPOSITORY
        payload["repository"]["pushed_at"] = _iso(self._tick(at))
        return self._parse("delete", payload, None)

    def deliver(self, event: BranchEvent) -> None:
        """What the worker does with the message the intake queued for ``event``."""
        self.run_worker(json.dumps(event.to_message()))

    def run_worker(self, body: str) -> None:
        """Run the worker on ``body`` the way Lambda would: after a wait, again once its
        backoff has passed (on the strict clock); on the last receive the worker gives up
        waiting. Any other failure is raised to the test."""
        for receive in itertools.count(1):
            try:
                handle_body(body, self.runtime)
                return
            except RetryLater:
                if receive >= DEFAULT_MAX_RECEIVE_COUNT - 1:
                    handle_delivery(Delivery(body, receive_count=receive), self.runtime)
                    return
                self.let_time_pass(backoff_seconds(receive))

    def let_time_pass(self, seconds: float) -> None:
        """Time passes for AWS (the strict layer's windows), not for the test."""
        self.waited += seconds
        if self.while_waiting is not None:
            self.while_waiting()
        clock = strict_clock_of(self.clients)
        if clock is not None:
            clock.advance(seconds)

    # -- AWS's side

    def push_image(self, sha: str) -> None:
        push_test_image(self.clients.client("ecr"), self.settings.ecr_repository, sha, seed=sha)

    def register_healthy_target(self, branch: str) -> None:
        """ECS started a task and the target group saw it pass its health check."""
        env = self.env(branch)
        assert env is not None and env.target_group_arn is not None
        self.clients.client("elbv2").register_targets(
            TargetGroupArn=env.target_group_arn, Targets=[{"Id": "10.0.1.10", "Port": 8080}]
        )

    def deployment_completed(self, branch: str) -> None:
        """ECS finished the rollout: a healthy target, then the EventBridge event."""
        self.register_healthy_target(branch)
        service = self.service(branch)
        self._completed[branch] = service["taskDefinition"]
        event = self.ecs_event("aws/ecs.deployment-completed", branch)
        # About the rollout that completed: the service's PRIMARY deployment, as ECS says.
        primary = [d["id"] for d in service.get("deployments", []) if d["status"] == "PRIMARY"]
        if primary:
            event["detail"]["deploymentId"] = primary[0]
            event["detail"]["reason"] = f"ECS deployment {primary[0]} completed."
        self.aws_event(event)

    def make_ready(self, branch: str, sha: str) -> None:
        """CI pushed the image, GitHub the commit, and ECS completed the rollout."""
        self.push_image(sha)
        self.deliver(self.push(branch, sha))
        self.deployment_completed(branch)

    def deployment_failed(self, branch: str, reason: str = ROLLBACK_REASON) -> None:
        """ECS's deployment circuit breaker with rollback, as the ECS developer guide
        describes it (moto plays none of it): the rollout fails, the service goes back to
        the task definition of its last completed deployment, and EventBridge gets
        SERVICE_DEPLOYMENT_FAILED, then the rollback deployment's IN_PROGRESS and
        COMPLETED. A service that never completed a deployment just fails."""
        previous = self._completed.get(branch)
        env = self.env(branch)
        assert env is not None and env.service_name is not None
        if previous is not None:
            self.aws_side.client("ecs").update_service(
                cluster=self.settings.cluster, service=env.service_name, taskDefinition=previous
            )
        failed = self.ecs_event("aws/ecs.deployment-failed", branch)
        failed["detail"]["reason"] = reason
        self.aws_event(failed)
        if previous is not None:
            for name, event_type in (
                ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO"),
                ("SERVICE_DEPLOYMENT_COMPLETED", "INFO"),
            ):
                event = self.ecs_event("aws/ecs.deployment-completed", branch)
                event["detail"].update(eventName=name, eventType=event_type)
                self.aws_event(event)

    def service(self, branch: str) -> dict[str, Any]:
        """The branch's ECS service as DescribeServices answers."""
        env = self.env(branch)
        assert env is not None and env.service_name is not None
        answer = self.aws_side.client("ecs").describe_services(
            cluster=self.settings.cluster, services=[env.service_name]
        )
        service: dict[str, Any] = answer["services"][0]
        return service

    def ecs_event(self, name: str, branch: str) -> dict[str, Any]:
        """A documented ECS event, about this branch's service."""
        env = self.env(branch)
        assert env is not None and env.service_name is not None
        event: dict[str, Any] = load_event(name)
        cluster = self.settings.cluster
        arn = f"arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{env.service_name}"
        event["resources"] = [arn]
        if "group" in event["detail"]:
            event["detail"]["group"] = f"service:{env.service_name}"
        return event

    def aws_event(self, event: dict[str, Any]) -> list[str]:
        """EventBridge delivers ``event`` to its handler; the worker drains the queue."""
        from chalicelib.handlers.aws_events import handle

        rt = self.runtime
        slugs = handle(event, rt.settings, rt.store, rt.queue)
        self.drain()
        return slugs

    def drain(self, limit: int = 20) -> int:
        """Feed queued messages to the worker like Lambda does (batch size 1)."""
        sqs = self.clients.client("sqs")
        handled = 0
        for _ in range(limit):
            answer = sqs.receive_message(QueueUrl=self.settings.queue_url, MaxNumberOfMessages=1)
            messages = answer.get("Messages", [])
            if not messages:
                break
            receipt = messages[0]["ReceiptHandle"]
            try:
                self.run_worker(messages[0]["Body"])
            except Exception:
                # Lambda leaves a failed message for SQS to deliver again once its
                # visibility timeout ends; the tests skip the wait.
                sqs.change_message_visibility(
                    QueueUrl=self.settings.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
                raise
            sqs.delete_message(QueueUrl=self.settings.queue_url, ReceiptHandle=receipt)
            handled += 1
        return handled

    # -- what people and auditors see

    def env(self, branch: str) -> Environment | None:
        return self.runtime.store.get(self.names(branch).slug)

    def inventory(self) -> Inventory:
        return self.runtime.inventory

    def leftovers(self, branch: str | None = None) -> list[ManagedResource]:
        slug = self.names(branch).slug if branch is not None else None
        return self.inventory().managed(slug)

    def kinds(self, branch: str) -> set[str]:
        return {r.kind for r in self.leftovers(branch)}

    # -- internals

    def _tick(self, at: float | None) -> float:
        if at is not None:
            return at
        self.clock += 10
        return self.clock

    def _parse(self, event: str, payload: dict[str, Any], delivery: str | None) -> BranchEvent:
        outcome = parse(event, payload, delivery or f"delivery-{next(_deliveries)}")
        assert isinstance(outcome, BranchEvent), outcome
        return outcome


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
