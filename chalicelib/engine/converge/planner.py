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

from chalicelib.aws.ecs import Service
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.messages import SignalKind
from chalicelib.domain.names import EnvironmentNames
from chalicelib.engine.converge.model import (
    OWNERSHIP_KEYS,
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
)
from chalicelib.engine.converge.recorded import completes_recorded_rollout

if TYPE_CHECKING:
    from chalicelib.aws.inventory import ManagedResource


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
    generations, records of a lost environment), in the safe order, without repeats."""
    order = (
        "dns_record",
        "listener_rule",
        "service",
        "target_group",
        "task_definition",
        "image_tag",
        "priority_claim",
    )
    seen = {_step_key(step) for step in planned}
    if any(isinstance(step, DeleteDns) for step in planned):
        seen.add(_step_key(DeleteDnsByHost(names.host)))
    steps: list[AnyStep] = []
    for kind in order:
        for resource in leftovers:
            step = _leftover_step(resource) if resource.kind == kind else None
            if step is None or resource.env != names.slug or _step_key(step) in seen:
                continue
            seen.add(_step_key(step))
            steps.append(step)
    return steps


def _step_key(step: AnyStep) -> tuple[str, str]:
    """What a step acts on: its type and its whole subject (every field), so two leftover
    claims on one listener are two steps, not one."""
    return type(step).__name__, repr(sorted(step.__dict__.items()))


def _leftover_step(resource: ManagedResource) -> AnyStep | None:
    ident = resource.identifier
    if resource.kind == "dns_record":
        return DeleteDnsByHost(ident)
    if resource.kind == "listener_rule":
        return DeleteRule(ident)
    if resource.kind == "service":
        return DeleteService(ident.rsplit("/", 1)[-1])
    if resource.kind == "target_group":
        return DeleteTargetGroup(ident)
    if resource.kind == "task_definition":
        return DeregisterTaskDefinitions(ident.rsplit("/", 1)[-1].rsplit(":", 1)[0])
    if resource.kind == "image_tag":
        return RemoveImageTags((ident,))
    if resource.kind == "priority_claim":
        listener_arn, _, priority = ident.rpartition("#")
        return ReleasePriority(listener_arn, int(priority))
    return None


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
    """No image for the sha yet: build it, or wait for CI to push it."""
    sha = env.desired_sha
    assert sha is not None
    if signal and signal.kind == SignalKind.BUILD_FAILED and signal.sha == sha:
        return Plan(tuple(steps), Status.FAILED, signal.reason, signal.log_url)
    if target.image_source == "ci":
        reason = f"waiting for CI to push {target.repository_uri}:{sha}"
        return Plan(tuple(steps), Status.BUILDING, reason)
    if target.image_source == "retag":
        reason = f"waiting for an image tagged {target.source_tag} to retag as {sha[:12]}"
        return Plan(tuple(steps), Status.BUILDING, reason)
    build = observed.build
    if build is not None and build.source_version == sha:
        if build.failed:
            phase = f" in its {build.failed_phase} phase" if build.failed_phase else ""
            reason = (
                f"the image build for {sha[:7]} {build.status.lower()}{phase}; "
                "open the build log, fix the Dockerfile or the code, and push again"
            )
            return Plan(tuple(steps), Status.FAILED, reason, build.log_url)
        return Plan(tuple(steps), Status.BUILDING, f"building image {sha[:12]}", build.log_url)
    if build is not None and build.in_progress:
        steps.append(StopBuild(build.id))  # superseded by a newer push of the branch
    steps.append(StartBuild(sha))
    return Plan(tuple(steps), Status.BUILDING, f"building image {sha[:12]}")


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
    serving = env.status == Status.READY and env.deployed_sha == env.desired_sha
    if not new_revision and current_td is not None and not serving:
        # The circuit breaker rolled this revision back: the service runs the previous
        # one again. That is ECS's verdict on this commit, never a diff to re-apply
        # (ECS developer guide, "deployment circuit breaker").
        rolled_back = service.failed_deployment_of(current_td)
        failed_now = _failure_of(signal, service, current_td)
        if failed_now or rolled_back is not None:
            said = signal.reason if failed_now and signal and signal.reason else None
            if said is None and rolled_back is not None:
                said = rolled_back.rollout_reason
            reason = _deployment_failure(said, service, env)
            return Plan(tuple(steps), Status.FAILED, reason, target.log_url)
    # A changed health check path goes with the rollout that brings the commit wanting it
    # (the target group is shared with the tasks that still run the previous commit).
    steps += _health_check_path(observed, target.health_check_path)
    port_changed = service.container_port not in (None, target.container_port)
    if (
        new_revision
        or port_changed
        or service.task_definition_arn != current_td
        or service.desired_count != target.desired_count
    ):
        port = target.container_port if port_changed else None
        steps.append(UpdateService(service.name, container_port=port))
        return Plan(tuple(steps), Status.DEPLOYING)
    if env.status == Status.READY and env.deployed_sha == env.desired_sha:
        return Plan(tuple(steps), Status.READY)
    if completes_recorded_rollout(env, signal):
        # ECS completed the rollout converge started: its tasks passed the load
        # balancer's health check (ECS counts a task healthy only then).
        return Plan(tuple(steps), Status.READY)
    # A completed event about another deployment than the current rollout (the service's
    # PRIMARY one when ECS was asked, else the one the record names) is a late or repeated
    # event of an earlier rollout (EventBridge delivers at least once, not in order): it
    # says nothing about this one. Knowing no deployment, any counts.
    completed = signal is not None and signal.kind == SignalKind.DEPLOYMENT_COMPLETED
    current = service.primary_deployment_id or env.deployment_id
    if completed and current is not None:
        completed = signal is not None and signal.deployment_id == current
    if completed or service.rollout_state == "COMPLETED":
        steps.append(AwaitHealthyTarget())
        return Plan(tuple(steps), Status.READY)
    return Plan(tuple(steps), Status.DEPLOYING)


def _health_check_path(observed: Observed, path: str | None) -> list[AnyStep]:
    group = observed.target_group
    if group is None or path is None or group.health_check_path in (None, path):
        return []
    return [SetHealthCheckPath(group.arn, path)]


def _failure_of(signal: Signal | None, service: Service, current_td: str) -> bool:
    """Whether a deployment_failed signal is about the revision being deployed now: a
    deployment ECS still lists for another revision makes it a late or repeated event
    about an earlier rollout (EventBridge delivers at least once, not in order)."""
    if signal is None or signal.kind != SignalKind.DEPLOYMENT_FAILED:
        return False
    listed = {deployment.id: deployment for deployment in service.deployments}
    deployment = listed.get(signal.deployment_id or "")
    return deployment is None or deployment.task_definition_arn == current_td


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
        steps.append(DeregisterTaskDefinitions(family, check_tags=not observed.recorded))
    tags = [names.branch_tag] if observed.branch_image is not None else []
    if target.image_source == "build":  # the build's layer cache (gone already is fine)
        tags.append(names.cache_tag)
    if tags:
        steps.append(RemoveImageTags(tuple(tags)))
    if env.priority is not None and env.listener_arn is not None:
        steps.append(ReleasePriority(env.listener_arn, env.priority))
    # The reason it went (set by the reaper: branch gone, idle past its TTL) is kept.
    return Plan(tuple(steps), Status.DELETED, env.reason)


def is_ours(tags: dict[str, str], ours: dict[str, str]) -> bool:
    return all(tags.get(key) == ours[key] for key in OWNERSHIP_KEYS)


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


def _deployment_failure(said: str | None, service: Service, env: Environment) -> str:
    """A reason a developer can act on: what ECS said, what still serves, what to do."""
    said = said or "the deployment circuit breaker stopped the rollout"
    latest = service.events[0] if service.events else None
    detail = f" ECS: {latest}" if latest and latest not in said else ""
    sha = (env.desired_sha or "")[:7]
    previous = env.deployed_sha
    if previous and previous != env.desired_sha:
        serving = f" ECS rolled back: {previous[:7]} keeps serving the preview."
    else:
        serving = " No earlier commit of this branch was ready, so nothing serves the preview."
    return (
        f"the deployment of {sha} failed: {said}.{detail}{serving} Read the task logs "
        "(link), fix the app or its health check path, and push again"
    ).replace("..", ".")
