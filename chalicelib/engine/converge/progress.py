"""What one converge run has learnt so far: the ARNs of what it found or made.

The executor (chalicelib/engine/converge/runners.py) fills a :class:`Progress` as its
steps run; the converger starts it from the record and the observation
(:func:`progress_from`) and writes it into the record when the run ends, with the few
facts a finished run adds to it (a push-to-ready time, a Spot interruption counted once).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chalicelib.aws.ecr import Image
from chalicelib.domain.environments import Environment
from chalicelib.domain.messages import SignalKind
from chalicelib.engine.converge.model import (
    SPEC_TAG,
    Observed,
    Plan,
    RouteToService,
    Signal,
    Target,
)
from chalicelib.engine.converge.sleep import routed_to_waker


@dataclass
class Progress:
    """What the executor has learnt so far in this run (ARNs of what it found or made)."""

    env: Environment
    listener_arn: str | None = None
    priority: int | None = None
    target_group_arn: str | None = None
    rule_arn: str | None = None
    task_definition_arn: str | None = None
    service_name: str | None = None
    sha_image: Image | None = None  # the desired commit's image, as observed in ECR
    deployment_id: str | None = None  # of the rollout this run started (Create/UpdateService)
    routed_to_waker: bool = False  # the rule forwards to the load balancer's waker
    # Claims to give up with the run's last write (the store's put_releasing): released and
    # recorded as one change, so no interruption leaves a claim the record does not name.
    releases: list[tuple[str, int]] = field(default_factory=list)
    unsaved: bool = False  # ``env`` holds a desired state no write has carried yet

    def recorded(self) -> Environment:
        """The record with what this run found or made written into it."""
        return replace(
            self.env,
            listener_arn=self.listener_arn,
            priority=self.priority,
            target_group_arn=self.target_group_arn,
            rule_arn=self.rule_arn,
            service_name=self.service_name,
            task_definition_arn=self.task_definition_arn,
            deployment_id=self.deployment_id,
            routed_to_waker=self.routed_to_waker,
        )


def progress_from(env: Environment, observed: Observed, target: Target) -> Progress:
    """Start from what the record and AWS already hold."""
    td = observed.task_definition
    service = observed.service
    # The rollout in progress is the service's PRIMARY deployment when ECS was asked (a
    # run cut off after its Create/UpdateService never recorded the one it started).
    deployment_id = env.deployment_id
    if service is not None and service.primary_deployment_id is not None:
        deployment_id = service.primary_deployment_id
    image = observed.sha_image if observed.sha_image and observed.sha_image.manifest else None
    return Progress(
        env=env,
        listener_arn=env.listener_arn,
        priority=env.priority,
        target_group_arn=observed.target_group.arn if observed.target_group else None,
        rule_arn=observed.rule.arn if observed.rule else None,
        task_definition_arn=td.arn if td and td.tags.get(SPEC_TAG) == target.spec else None,
        service_name=service.name if service else env.service_name,
        sha_image=image,  # never one rebuilt from the record: that has no manifest
        deployment_id=deployment_id,
        routed_to_waker=routed_to_waker(observed, target),
    )


def woke(the_plan: Plan) -> bool:
    """A plan that routes a woken environment back to its service: ready again, but no
    push became ready (push-to-ready times count pushes)."""
    return any(isinstance(step, RouteToService) for step in the_plan.steps)


def new_spot_interruption(signal: Signal | None, env: Environment) -> bool:
    if signal is None or signal.kind != SignalKind.SPOT_INTERRUPTED:
        return False
    return signal.task_arn is None or signal.task_arn != env.last_spot_task


def with_ready_time(env: Environment, now: float) -> Environment:
    """Keep the last push-to-ready durations (oldest first, the newest last, at most ten)."""
    if env.triggered_at is None:
        return replace(env, ready_at=now)
    seconds = round(now - env.triggered_at, 1)
    return replace(env, ready_at=now, ready_seconds=(*env.ready_seconds, seconds)[-10:])
