"""Sleep and wake: the planner's part for an environment whose service is in place.

An environment the reaper found idle is marked ``asleep`` on its record; converge then
routes its host to the load balancer's waker (:class:`RouteToWaker`: the waker at weight 1,
the environment's own target group kept at weight 0) and only then scales the service to
zero, so a request never meets a rule without a target. Everything else stays: the
priority, the target group, the task definition and the DNS record, so a wake is one
UpdateService and a health check away.

Awake again (a request reached the waker, a push, the dashboard), the service goes back to
its desired count; converge waits for a healthy target exactly as a deploy does
(:class:`AwaitHealthyTarget`, the worker's backoff between tries) and only then routes the
host back to the service (:class:`RouteToService`). While it waits the environment shows
``deploying`` ("waking up"), recorded by the converger from the plan's ``waiting`` status.

Pure, like the planner: no AWS here.
"""

from __future__ import annotations

from chalicelib.aws.ecs import Service
from chalicelib.domain.environments import Environment, Status
from chalicelib.engine.converge.model import (
    AnyStep,
    AwaitHealthyTarget,
    Observed,
    Plan,
    RouteToService,
    RouteToWaker,
    Target,
    UpdateService,
)

WAKING_REASON = "waking up: the service starts again and waits for a healthy target"


def wants_sleep(env: Environment, target: Target) -> bool:
    """Whether ``env`` is to sleep now: marked asleep, serving its desired commit, on a
    load balancer with a waker."""
    return (
        env.asleep
        and target.waker_target_group_arn is not None
        and env.deployed_sha is not None
        and env.deployed_sha == env.desired_sha
        and env.status in (Status.READY, Status.SLEEPING)
    )


def routed_to_waker(observed: Observed, target: Target) -> bool:
    """Whether the environment's rule sends its host to the waker (as observed or recorded)."""
    waker = target.waker_target_group_arn
    return waker is not None and observed.rule is not None and observed.rule.serves == waker


def plan_sleep_or_wake(
    env: Environment, observed: Observed, target: Target, service: Service
) -> Plan | None:
    """The plan for a sleeping, falling-asleep or waking environment whose service runs its
    current task definition; None when the environment is simply awake (the deploy path
    decides)."""
    if wants_sleep(env, target):
        return _plan_sleep(observed, target, service)
    routed = routed_to_waker(observed, target)
    # ``slept_at`` stays until the environment is ready again: a wake that stopped after
    # routing back (its record not written) is finished here, not left deploying.
    if not routed and env.status != Status.SLEEPING and env.slept_at is None:
        return None
    if env.deployed_sha is None or env.deployed_sha != env.desired_sha:
        return None  # a push to a sleeping branch: the deploy path wakes it
    return _plan_wake(observed, target, service, routed)


def _plan_sleep(observed: Observed, target: Target, service: Service) -> Plan:
    steps: list[AnyStep] = []
    waker = target.waker_target_group_arn
    rule, group = observed.rule, observed.target_group
    assert waker is not None
    if rule is not None and group is not None and rule.serves != waker:
        steps.append(RouteToWaker(rule.arn, waker, group.arn))
    if service.desired_count != 0:
        steps.append(UpdateService(service.name, desired_count=0))
    return Plan(tuple(steps), Status.SLEEPING)


def _plan_wake(observed: Observed, target: Target, service: Service, routed: bool) -> Plan:
    steps: list[AnyStep] = []
    if service.desired_count != target.desired_count:
        steps.append(UpdateService(service.name, desired_count=target.desired_count))
    steps += back_to_service(observed, routed)
    return Plan(tuple(steps), Status.READY, waiting=Status.DEPLOYING, waiting_reason=WAKING_REASON)


def back_to_service(observed: Observed, routed: bool) -> list[AnyStep]:
    """Once a target is healthy, the host goes back to the service (nothing while it is
    not routed to the waker)."""
    rule, group = observed.rule, observed.target_group
    if not routed or rule is None or group is None:
        return []
    return [AwaitHealthyTarget(), RouteToService(rule.arn, group.arn)]
