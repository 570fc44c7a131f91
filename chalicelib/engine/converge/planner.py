"""The pure planner: desired state + what AWS holds → the steps to run, in order.

No AWS here. :func:`plan` looks at an :class:`~chalicelib.domain.environments.Environment`, what
was observed and the :class:`Target`, and returns a :class:`Plan` that a dry run can print
and the step runners execute. Nothing is planned for deletion unless its tags (or, for
DNS, its TXT owner record) say it belongs to this environment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import EnvironmentNames
from chalicelib.engine.converge.kinds import REGISTRY
from chalicelib.engine.converge.model import (
    SPEC_TAG,
    AnyStep,
    AwaitHealthyTarget,
    ClaimPriority,
    CreateRule,
    CreateService,
    CreateTargetGroup,
    DeleteDns,
    DeleteDnsByHost,
    DeleteRule,
    DeleteService,
    DeleteTargetGroup,
    DeregisterTaskDefinitions,
    Observed,
    Plan,
    RegisterTaskDefinition,
    ReleasePriority,
    RemoveImageTags,
    RetagImage,
    SetHealthCheckPath,
    Signal,
    StartBuild,
    StopBuild,
    TagBranchImage,
    Target,
    UpdateService,
    UpsertDns,
    is_ours,
)
from chalicelib.engine.converge.sleep import back_to_service, plan_sleep_or_wake, routed_to_waker
from chalicelib.engine.converge.status import (
    Readiness,
    building,
    image_verdict,
    readiness,
    rollback_verdict,
)

if TYPE_CHECKING:
    from chalicelib.domain.resources import ManagedResource


def plan(
    env: Environment,
    observed: Observed,
    target: Target,
    signal: Signal | None,
    leftovers: Sequence[ManagedResource] = (),
) -> Plan:
    """Pure: the steps that take AWS from ``observed`` to ``env``'s desired state.
    ``leftovers`` are resources the reaper found tagged for this environment; an absent
    environment removes them too."""
    if env.desired == "absent":
        absent = plan_absent(env, observed, target)
        extra = _leftover_steps(leftovers, absent.steps, target.names)
        return replace(absent, steps=(*absent.steps, *extra))
    return _plan_present(env, observed, target, signal)


def _leftover_steps(
    leftovers: Sequence[ManagedResource], planned: Sequence[AnyStep], names: EnvironmentNames
) -> list[AnyStep]:
    """Delete steps for tagged resources that the normal observation did not see (older
    generations, records of a lost environment), in the registry's teardown order,
    without repeats."""
    seen = {_step_key(step) for step in planned}
    if any(isinstance(step, DeleteDns) for step in planned):
        seen.add(_step_key(DeleteDnsByHost(names.host)))
    steps: list[AnyStep] = []
    for spec in REGISTRY:
        for resource in leftovers:
            if resource.kind != spec.kind or resource.env != names.slug:
                continue
            step = spec.leftover(resource.identifier)
            if _step_key(step) in seen:
                continue
            seen.add(_step_key(step))
            steps.append(step)
    return steps


def _step_key(step: AnyStep) -> tuple[str, str]:
    """What a step acts on: its type and its whole subject (every field), so two leftover
    claims on one listener are two steps, not one."""
    return type(step).__name__, repr(sorted(step.__dict__.items()))


def _plan_present(
    env: Environment, observed: Observed, target: Target, signal: Signal | None
) -> Plan:
    names = target.names
    if target.excluded:
        teardown = plan_absent(env, observed, target)
        return Plan(teardown.steps, Status.DELETED, target.excluded)
    if target.problem:
        # Nothing is changed for a configuration that fails its checks; a branch that
        # never had a good deploy keeps nothing (not even its early DNS record).
        undo = plan_absent(env, observed, target).steps if env.deployed_sha is None else ()
        return Plan(undo, Status.FAILED, target.problem, env.log_url)
    owner_problem = _foreign_resource(observed, names)
    if owner_problem:
        return Plan((), Status.FAILED, owner_problem)
    steps: list[AnyStep] = []
    # DNS takes longest to settle, so it goes first, even before there is an image.
    if observed.dns is None or observed.dns.alb_dns_name.rstrip(".").lower() != (
        target.listener.dns_name.rstrip(".").lower()
    ):
        listener = target.listener
        create = observed.dns is None  # nothing at the host: CREATE, never over a newcomer
        steps.append(UpsertDns(names.host, listener.dns_name, listener.zone_id, create=create))
    needs_claim = env.priority is None or env.listener_arn != target.listener.listener_arn
    if observed.rule is None and needs_claim:
        steps.append(ClaimPriority(target.listener.listener_arn))
    if observed.target_group is None:
        steps.append(CreateTargetGroup(names.target_group))
    if observed.rule is None:
        steps.append(CreateRule(target.listener.listener_arn, names.host))
    if env.status == Status.FAILED:
        # Failed for this sha (build, deployment, policy, no room): stays failed until a
        # new push, which the worker turns back into pending. Only a branch that still
        # serves an earlier commit gets its routing repaired meanwhile, health-checked
        # the way that commit wants (a rollback must not keep the failed one's path).
        if env.deployed_sha is None:
            return Plan((), Status.FAILED, env.reason, env.log_url)
        steps += _health_check_path(observed, env.serving_health_check_path)
        return Plan(tuple(steps), Status.FAILED, env.reason, env.log_url)
    if env.desired_sha is None:
        return Plan(tuple(steps), Status.PENDING, "waiting for the branch's first push")
    image = observed.sha_image
    if image is None and target.source_tag and observed.source_image is not None:
        steps.append(RetagImage(target.source_tag, env.desired_sha))
        image = observed.source_image
    if image is None or target.task_definition is None or target.spec is None:
        return _plan_image(env, observed, target, signal, steps)
    if observed.branch_image is None or observed.branch_image.digest != image.digest:
        steps.append(TagBranchImage(names.branch_tag))
    td = observed.task_definition
    if td is None or td.tags.get(SPEC_TAG) != target.spec:
        steps.append(RegisterTaskDefinition(names.task_family, target.spec))
    return _plan_service(env, observed, target, signal, steps)


def _plan_image(
    env: Environment,
    observed: Observed,
    target: Target,
    signal: Signal | None,
    steps: list[AnyStep],
) -> Plan:
    """No image for the sha yet: wait for CI, a retag or the running build, or build it."""
    sha = env.desired_sha
    assert sha is not None
    verdict = image_verdict(env, observed, target, signal)
    if verdict is not None:
        return Plan(tuple(steps), verdict.status, verdict.reason, verdict.log_url)
    build = observed.build
    if build is not None and build.in_progress:
        steps.append(StopBuild(build.id))  # superseded by a newer push of the branch
    steps.append(StartBuild(sha))
    started = building(sha)
    return Plan(tuple(steps), started.status, started.reason)


def _plan_service(
    env: Environment,
    observed: Observed,
    target: Target,
    signal: Signal | None,
    steps: list[AnyStep],
) -> Plan:
    service = observed.service
    new_revision = any(isinstance(s, RegisterTaskDefinition) for s in steps)
    if service is None or service.status == "INACTIVE":
        generation = env.generation if service is None else env.generation + 1
        steps.append(CreateService(generation))
        return Plan(tuple(steps), Status.DEPLOYING)
    if service.status == "DRAINING":
        # The previous service of this branch is still draining; its name cannot be
        # reused until it is gone, so the re-created branch gets the next generation.
        steps.append(CreateService(env.generation + 1))
        return Plan(tuple(steps), Status.DEPLOYING)
    current_td = observed.task_definition.arn if observed.task_definition else None
    port_changed = service.container_port not in (None, target.container_port)
    if not (new_revision or port_changed) and service.task_definition_arn == current_td:
        resting = plan_sleep_or_wake(env, observed, target, service)
        if resting is not None:
            return replace(resting, steps=(*steps, *resting.steps))
    serving = env.status == Status.READY and env.deployed_sha == env.desired_sha
    if not new_revision and current_td is not None and not serving:
        verdict = rollback_verdict(env, service, current_td, signal, target)
        if verdict is not None:
            return Plan(tuple(steps), verdict.status, verdict.reason, verdict.log_url)
    # A changed health check path goes with the rollout that brings the commit wanting it
    # (the target group is shared with the tasks that still run the previous commit).
    steps += _health_check_path(observed, target.health_check_path)
    if (
        new_revision
        or port_changed
        or service.task_definition_arn != current_td
        or service.desired_count != target.desired_count
    ):
        port = target.container_port if port_changed else None
        steps.append(UpdateService(service.name, container_port=port))
        return Plan(tuple(steps), Status.DEPLOYING)
    stage = readiness(env, service, signal)
    if stage == Readiness.DEPLOYING:
        return Plan(tuple(steps), Status.DEPLOYING)
    # A push to a sleeping branch: its host goes back to the service once a target is
    # healthy (which READY_ONCE_HEALTHY waits for anyway).
    back = back_to_service(observed, routed_to_waker(observed, target))
    if stage == Readiness.READY_ONCE_HEALTHY and not back:
        steps.append(AwaitHealthyTarget())  # ECS says completed; ELB must say healthy
    return Plan((*steps, *back), Status.READY)


def _health_check_path(observed: Observed, path: str | None) -> list[AnyStep]:
    group = observed.target_group
    if group is None or path is None or group.health_check_path in (None, path):
        return []
    return [SetHealthCheckPath(group.arn, path)]


def plan_absent(env: Environment, observed: Observed, target: Target) -> Plan:
    """The steps that remove what this environment owns (the teardown of a branch)."""
    names = target.names
    ours = names.tags()
    steps: list[AnyStep] = []
    if observed.dns is not None and observed.dns.owner == names.dns_owner:
        steps.append(DeleteDns(observed.dns))
    if observed.rule is not None and is_ours(observed.rule.tags, ours):
        steps.append(DeleteRule(observed.rule.arn))
    service = observed.service
    if service is not None and service.status == "ACTIVE" and is_ours(service.tags, ours):
        steps.append(DeleteService(service.name))
    if observed.target_group is not None and is_ours(observed.target_group.tags, ours):
        steps.append(DeleteTargetGroup(observed.target_group.arn))
    if observed.task_definition is not None and is_ours(observed.task_definition.tags, ours):
        family = names.task_family
        known = env.task_definitions if observed.recorded else ()
        steps.append(DeregisterTaskDefinitions(family, known=known))
    # A build the record names may have pushed the branch tag since (gone already is fine).
    built = observed.recorded and env.build_id is not None
    tags = [names.branch_tag] if observed.branch_image is not None or built else []
    if target.image_source == "build":  # the build's layer cache (gone already is fine)
        tags.append(names.cache_tag)
    if tags:
        steps.append(RemoveImageTags(tuple(tags)))
    if env.priority is not None and env.listener_arn is not None:
        steps.append(ReleasePriority(env.listener_arn, env.priority))
    # The reason it went (set by the reaper: branch gone, idle past its TTL) is kept.
    return Plan(tuple(steps), Status.DELETED, env.reason)


def _foreign_resource(observed: Observed, names: EnvironmentNames) -> str | None:
    """A reason to stop when a resource with our name exists but is not ours."""
    ours = names.tags()
    if observed.dns is not None and observed.dns.owner != names.dns_owner:
        return (
            f"a DNS record for {names.host} already exists and branchenv did not make it; "
            "remove it or rename the branch"
        )
    if observed.target_group is not None and not is_ours(observed.target_group.tags, ours):
        return (
            f"a target group named {names.target_group} exists without branchenv's tags; "
            "remove it or rename the branch"
        )
    if observed.rule is not None and not is_ours(observed.rule.tags, ours):
        return (
            f"a listener rule for {names.host} exists without branchenv's tags; "
            "remove it or rename the branch"
        )
    service = observed.service
    if service is not None and service.status != "INACTIVE" and not is_ours(service.tags, ours):
        return (
            f"an ECS service named {service.name} exists without branchenv's tags; "
            "remove it or rename the branch"
        )
    return None


def spec_fingerprint(request: dict[str, Any]) -> str:
    """A short hash of a rendered task definition, without its tags: equal requests, equal
    fingerprints, so converge registers a new revision only when something changed."""
    body = {k: v for k, v in request.items() if k != "tags"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
