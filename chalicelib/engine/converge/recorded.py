"""Observation from the record: what converge made and wrote down is trusted.

A converge run that finishes cleanly writes into the environment's record what AWS now
holds for it (:func:`holdings_after`) and marks the record ``known``; a run that changed
AWS and then stopped on an error marks it not known (``Converger._forget_holdings``). The
next converge then reads every kind in AWS by name and tag, as it does for a record that
never knew (written before converge kept its holdings), for a dry run and on the
reaper's sweep (where drift made outside branchenv is found and repaired). A run
cut off without an error (a Lambda timeout) leaves the record trusted: every step is safe
to repeat from it, and a repeat that meets what the cut-off run made (a CREATE of a DNS
record that is there, a service name taken, a priority held by our own rule) either adopts
it or stops with an error, which marks the record not known.

From a known record (a teardown's included), :func:`observed_from_record` rebuilds the
planner's :class:`~chalicelib.engine.converge.model.Observed` for the DNS record, the target
group, the rule and the task definition without an AWS call; the images are trusted only when the
record says the desired commit's were verified; the service is always read (its rollout
is what the next decision depends on), and so is a build converge waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.aws.codebuild import Build
from chalicelib.aws.ecr import Image
from chalicelib.aws.ecs import Service
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.messages import SignalKind
from chalicelib.engine.converge.kinds import dns as dns_kind
from chalicelib.engine.converge.kinds import images as image_kind
from chalicelib.engine.converge.kinds import rule as rule_kind
from chalicelib.engine.converge.kinds import service as service_kind
from chalicelib.engine.converge.kinds import target_group as target_group_kind
from chalicelib.engine.converge.kinds import task_definition as task_definition_kind
from chalicelib.engine.converge.model import (
    AnyStep,
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
    ReleasePriority,
    RemoveImageTags,
    RetagImage,
    SetHealthCheckPath,
    Signal,
    TagBranchImage,
    Target,
    UpdateService,
    UpsertDns,
)
from chalicelib.engine.converge.status import completes_recorded_rollout

TEARDOWN_STEPS = (
    DeleteDns,
    DeleteDnsByHost,
    DeleteRule,
    DeleteService,
    DeleteTargetGroup,
    DeregisterTaskDefinitions,
    RemoveImageTags,
    ReleasePriority,
)
# The statuses after which the record says all that AWS holds: a failed run (foreign
# resource, policy, rollback) or a teardown leaves the next run to look for itself.
KNOWN_AFTER = (Status.PENDING, Status.BUILDING, Status.DEPLOYING, Status.READY, Status.SLEEPING)


def can_trust(env: Environment) -> bool:
    """Whether the next converge may plan from the record instead of observing AWS. A
    teardown planned from it removes what the record names; anything it did not know of
    is still tagged as the environment's, and the reaper's sweep removes it."""
    return env.known


def observed_from_record(
    env: Environment,
    target: Target,
    signal: Signal | None,
    *,
    read_service: Callable[[str], Service | None],
    read_images: Callable[[list[str]], dict[str, Image]],
    read_build: Callable[[str], Build | None],
) -> Observed:
    """The planner's view of ``env``, from its record and the few reads it depends on."""
    names = target.names
    sha = env.desired_sha if env.desired == "present" else None
    images: dict[str, Image] = {}
    if env.image_sha and (sha is None or env.image_sha == sha):
        images = image_kind.from_record(env.image_sha, names.branch_tag)
    elif env.desired == "absent":
        images = {}  # nothing verified: no branch tag of this environment's to remove
    elif (
        sha
        and signal is not None
        and signal.kind == SignalKind.BUILD_SUCCEEDED
        and (signal.sha == sha and target.image_source == "build")
    ):
        # CodeBuild's word: the build of this sha succeeded, and buildspec.yml's build
        # phase pushes the sha tag and the branch tag, or fails the build.
        images = image_kind.from_record(sha, names.branch_tag)
    elif sha:
        images = read_images(image_kind.wanted_tags(env, target))
    build = None
    if env.build_id and image_kind.awaits_build(env, target, images):
        build = read_build(env.build_id)
    source = images.get(target.source_tag) if target.source_tag else None
    service = None
    if env.service_name:
        waits_for_image = sha is not None and sha not in images and source is None
        if _service_does_not_matter(env, target, signal, waits_for_image):
            service = service_kind.from_record(env, target)
        else:
            service = read_service(env.service_name)
    return Observed(
        dns=dns_kind.from_record(env, target),
        target_group=target_group_kind.from_record(env, target),
        rule=rule_kind.from_record(env, target),
        sha_image=images.get(sha) if sha else None,
        branch_image=images.get(names.branch_tag),
        task_definition=task_definition_kind.from_record(env, target),
        service=service,
        source_image=source,
        build=build,
        recorded=True,
    )


def _service_does_not_matter(
    env: Environment, target: Target, signal: Signal | None, waits_for_image: bool
) -> bool:
    """Whether the next decision holds whatever the service's rollout is, so the record's
    word about it is enough: a teardown (it deletes the service by name, gone already is
    fine), a commit whose image is not there yet (nothing is deployed), a new task spec
    (the service is updated whatever it runs, and an update of a service that is gone
    answers NotFound, which makes converge observe everything), or ECS saying that the
    rollout converge started completed (ECS counts a task healthy only once the load
    balancer does: ECS developer guide, "Optimize load balancer health check parameters")."""
    if env.desired == "absent" or waits_for_image:
        return True
    if env.service_port is None or env.service_port != target.container_port:
        return False
    if target.spec is not None and target.spec != env.task_spec:
        return True
    return completes_recorded_rollout(env, signal)


def holdings_after(
    env: Environment,
    observed: Observed,
    the_plan: Plan,
    target: Target,
    *,
    target_group_arn: str | None,
    rule_arn: str | None,
    task_definition_arn: str | None,
) -> dict[str, Any]:
    """What the record keeps once ``the_plan`` ran to its end: the fields of
    :class:`~chalicelib.domain.environments.Environment` to replace."""
    steps = the_plan.steps
    if (
        env.desired != "present"
        or the_plan.status not in KNOWN_AFTER
        or any(isinstance(step, TEARDOWN_STEPS) for step in steps)
    ):
        return {"known": False}
    dns_target = observed.dns.alb_dns_name if observed.dns else None
    path = observed.target_group.health_check_path if observed.target_group else None
    image_sha = None
    sha_there = observed.sha_image is not None or _has(steps, RetagImage)
    branch_there = observed.branch_image is not None and (
        observed.sha_image is not None and observed.branch_image.digest == observed.sha_image.digest
    )
    for step in steps:
        if isinstance(step, UpsertDns):
            dns_target = step.alb_dns_name
        elif isinstance(step, CreateTargetGroup):
            path = target.health_check_path
        elif isinstance(step, SetHealthCheckPath):
            path = step.path
        elif isinstance(step, TagBranchImage):
            branch_there = True
    if env.desired_sha and sha_there and branch_there:
        image_sha = env.desired_sha
    # The port of a live service this run found or made; None says "read the service"
    # (one that is draining or gone, say after a teardown, is never the record's to use).
    service = observed.service
    port = service.container_port if service and service.status == "ACTIVE" else None
    if _has(steps, CreateService) or _has(steps, UpdateService):
        port = target.container_port
    return {
        "known": True,
        "dns_target": dns_target,
        "health_check_path": path if target_group_arn else None,
        "image_sha": image_sha,
        "task_spec": target.spec if task_definition_arn else None,
        "target_group_arn": target_group_arn,
        "rule_arn": rule_arn,
        "task_definition_arn": task_definition_arn,
        "service_port": port,
    }


def _has(steps: tuple[Any, ...], kind: type) -> bool:
    return any(isinstance(step, kind) for step in steps)


def holdings_while_tearing_down(done: Sequence[AnyStep], *, known: bool) -> dict[str, Any]:
    """What the record keeps of a teardown that waits on AWS after the steps ``done``:
    known (when it was planned from a known record), less what those steps removed, so
    the run after the wait plans only what is left."""
    if not known:
        return {"known": False}
    steps = tuple(done)
    changes: dict[str, Any] = {"known": True}
    if _has(steps, DeleteDns) or _has(steps, DeleteDnsByHost):
        changes["dns_target"] = None
    if _has(steps, DeleteService):
        changes.update(service_name=None, service_port=None, deployment_id=None)
    if _has(steps, DeleteTargetGroup):
        changes["health_check_path"] = None
    if _has(steps, DeregisterTaskDefinitions):
        changes.update(task_definition_arn=None, task_spec=None, task_definitions=())
    if _has(steps, RemoveImageTags):
        changes["image_sha"] = None
    return changes
