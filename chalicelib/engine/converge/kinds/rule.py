"""The listener rule: the host-header rule that sends ``<slug>.<domain>`` to the branch.

Found on its listener by its host (one DescribeRules per listener), confirmed ours by its
tags; the record keeps its ARN with the listener and priority it holds. Creating it is
where a full load balancer is met: the environment moves its claim (and its DNS alias)
to the next load balancer of the pool, or fails at once when all are full (:class:`NoRoom`).
Removed right after DNS, so traffic stops before the service goes. While the environment
sleeps, the rule forwards to its load balancer's waker (``RouteToWaker``) and back to the
environment's own target group once it is awake and healthy (``RouteToService``); the record
keeps which (``routed_to_waker``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chalicelib.aws.elbv2 import LoadBalancerFull, PriorityInUse, Rule
from chalicelib.domain.environments import Environment
from chalicelib.domain.resources import ResourceKind
from chalicelib.domain.settings import Listener
from chalicelib.engine.converge.kinds import priority
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import (
    CreateRule,
    DeleteRule,
    NoRoom,
    RetryLater,
    RouteToService,
    RouteToWaker,
    Target,
    is_ours,
)
from chalicelib.engine.converge.progress import Progress

log = logging.getLogger(__name__)

PRIORITY_ATTEMPTS = 20


def run_create(ctx: Context, step: CreateRule, progress: Progress, target: Target) -> None:
    if progress.target_group_arn is None:
        found = ctx.load_balancing.find_target_group(target.names.target_group)
        if found is None:
            raise RetryLater(f"target group {target.names.target_group} is not there yet")
        progress.target_group_arn = found.arn
    full: list[str] = []
    for listener in _listeners_from(ctx, step.listener_arn):
        if listener.listener_arn != progress.listener_arn:
            _move_claim(ctx, progress, listener, target)
        try:
            _create_rule(ctx, listener.listener_arn, step.host, progress, target)
            return
        except LoadBalancerFull as exc:
            full.append(exc.code or "full")
            log.info("%s: %s is full (%s)", target.names.slug, listener.dns_name, exc.code)
    raise NoRoom(no_room_reason(len(full), full))


def _listeners_from(ctx: Context, first_arn: str) -> list[Listener]:
    """The pool, the environment's own listener first, then the others in order."""
    pool = list(ctx.settings.listeners)
    first = [item for item in pool if item.listener_arn == first_arn]
    return first + [item for item in pool if item.listener_arn != first_arn]


def _move_claim(ctx: Context, progress: Progress, listener: Listener, target: Target) -> None:
    """Claim a priority on another load balancer's listener and point DNS at it."""
    slug = target.names.slug
    old_listener, old_priority = progress.listener_arn, progress.priority
    # Claimed and recorded first, released after: an interrupted run leaves a claim
    # the record names (found again), never a record naming no claim.
    priority.claim(ctx, progress, listener.listener_arn, skip=())
    if old_listener is not None and old_priority is not None:
        ctx.store.release_priority(old_listener, old_priority, slug)
    names = target.names
    ctx.dns.upsert_alias(names.host, listener.dns_name, listener.zone_id, names.dns_owner)


def _create_rule(
    ctx: Context, listener_arn: str, host: str, progress: Progress, target: Target
) -> None:
    assert progress.priority is not None and progress.target_group_arn is not None
    tried: list[int] = []
    for _ in range(PRIORITY_ATTEMPTS):
        try:
            rule = ctx.load_balancing.create_rule(
                listener_arn,
                priority=progress.priority,
                host=host,
                target_group_arn=progress.target_group_arn,
                tags=target.names.tags(),
            )
        except PriorityInUse:
            existing = ctx.load_balancing.find_rule(listener_arn, host)
            if existing is not None and is_ours(existing.tags, target.names.tags()):
                # Ours, from a run the record does not know of (a lost record): adopt it.
                progress.priority, progress.rule_arn = existing.priority, existing.arn
                return
            # A rule branchenv did not claim holds this priority: claim another.
            tried.append(progress.priority)
            ctx.store.release_priority(listener_arn, progress.priority, target.names.slug)
            priority.claim(ctx, progress, listener_arn, skip=tried)
            continue
        progress.rule_arn = rule.arn
        return
    raise RetryLater(f"no free rule priority after {PRIORITY_ATTEMPTS} attempts")


def run_route_to_waker(
    ctx: Context, step: RouteToWaker, progress: Progress, target: Target
) -> None:
    weights = ((step.waker_target_group_arn, 1), (step.target_group_arn, 0))
    ctx.load_balancing.forward(step.rule_arn, weights)
    progress.routed_to_waker = True


def run_route_to_service(
    ctx: Context, step: RouteToService, progress: Progress, target: Target
) -> None:
    ctx.load_balancing.forward(step.rule_arn, ((step.target_group_arn, 1),))
    progress.routed_to_waker = False


def run_delete(ctx: Context, step: DeleteRule, progress: Progress, target: Target) -> None:
    ctx.load_balancing.delete_rule(step.arn)
    progress.rule_arn = None


def no_room_reason(load_balancers: int, codes: Sequence[str]) -> str:
    unique = "TooManyUniqueTargetGroupsPerLoadBalancer"
    which = unique if unique in codes else "TooManyRules"
    return (
        f"no room for a new preview: all {load_balancers} load balancer(s) of this "
        f"installation are full (ELB answered {which}: at most 100 target groups per load "
        "balancer, and 100 rules by default). Delete preview branches you no longer need, "
        "or add a load balancer: raise load_balancer_count in terraform/ (it puts each "
        "load balancer's listener in BRANCHENV_LISTENERS), then push again"
    )


def find(ctx: Context, env: Environment, target: Target) -> Rule | None:
    """The rule for the host on the environment's listener (a new one's: the target's)."""
    listener_arn = env.listener_arn or target.listener.listener_arn
    return ctx.load_balancing.find_rule(listener_arn, target.names.host)


def from_record(env: Environment, target: Target) -> Rule | None:
    """The rule as the record keeps it: its ARN, listener and priority."""
    if not (env.rule_arn and env.listener_arn and env.priority is not None):
        return None
    names = target.names
    own = (env.target_group_arn,) if env.target_group_arn else ()
    waker = target.waker_target_group_arn if env.routed_to_waker else None
    forwards = (waker, *own) if waker else own
    serves = waker or env.target_group_arn
    return Rule(
        env.rule_arn, env.listener_arn, env.priority, (names.host,), forwards, names.tags(), serves
    )


def _recorded(env: Environment, host: str) -> str | None:
    return env.rule_arn


KIND = KindSpec(
    kind=ResourceKind.LISTENER_RULE,
    steps=(CreateRule, RouteToWaker, RouteToService, DeleteRule),
    leftover=DeleteRule,
    recorded=_recorded,
)
