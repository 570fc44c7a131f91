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

from collections.abc import Callable
from typing import Any

from chalicelib.aws.codebuild import Build
from chalicelib.aws.ecr import Image
from chalicelib.aws.ecs import Service, TaskDefinition
from chalicelib.aws.elbv2 import Rule, TargetGroup
from chalicelib.aws.route53 import AliasRecord
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.messages import SignalKind
from chalicelib.engine.converge.model import (
    SPEC_TAG,
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
KNOWN_AFTER = (Status.PENDING, Status.BUILDING, Status.DEPLOYING, Status.READY)
RECORDED_IMAGE = "(verified by converge; see the record)"


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
    names, tags = target.names, target.names.tags()
    dns = None
    if env.dns_target:
        zone = target.listener.zone_id
        dns = AliasRecord(names.host, env.dns_target, zone, names.dns_owner)
    group = None
    if env.target_group_arn:
        group = TargetGroup(env.target_group_arn, names.target_group, tags, env.health_check_path)
    rule = None
    if env.rule_arn and env.listener_arn and env.priority is not None:
        forwards = (env.target_group_arn,) if env.target_group_arn else ()
        rule = Rule(env.rule_arn, env.listener_arn, env.priority, (names.host,), forwards, tags)
    definition = None
    if env.task_definition_arn and env.task_spec:
        revision = int(env.task_definition_arn.rsplit(":", 1)[-1])
        spec_tags = {**tags, SPEC_TAG: env.task_spec}
        family = names.task_family
        definition = TaskDefinition(env.task_definition_arn, family, revision, "", {}, spec_tags)
    sha = env.desired_sha if env.desired == "present" else None
    images: dict[str, Image] = {}
    if env.image_sha and (sha is None or env.image_sha == sha):
        images = _recorded_images(env.image_sha, names.branch_tag)
    elif env.desired == "absent":
        images = read_images([names.branch_tag])
    elif (
        sha
        and signal is not None
        and signal.kind == SignalKind.BUILD_SUCCEEDED
        and (signal.sha == sha and target.image_source == "build")
    ):
        # CodeBuild's word: the build of this sha succeeded, and buildspec.yml's build
        # phase pushes the sha tag and the branch tag, or fails the build.
        images = _recorded_images(sha, names.branch_tag)
    elif sha:
        wanted = [sha, names.branch_tag] + ([target.source_tag] if target.source_tag else [])
        images = read_images(wanted)
    build = None
    if sha and sha not in images and env.build_id and target.image_source == "build":
        build = read_build(env.build_id)
    source = images.get(target.source_tag) if target.source_tag else None
    service = None
    if env.service_name:
        waits_for_image = sha is not None and sha not in images and source is None
        if _service_does_not_matter(env, target, signal, waits_for_image):
            service = _recorded_service(env, target)
        else:
            service = read_service(env.service_name)
    return Observed(
        dns=dns,
        target_group=group,
        rule=rule,
        sha_image=images.get(sha) if sha else None,
        branch_image=images.get(names.branch_tag),
        task_definition=definition,
        service=service,
        source_image=source,
        build=build,
        recorded=True,
    )


def _recorded_images(sha: str, branch_tag: str) -> dict[str, Image]:
    recorded = Image(sha, RECORDED_IMAGE, "", "")
    return {sha: recorded, branch_tag: recorded}


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


def completes_recorded_rollout(env: Environment, signal: Signal | None) -> bool:
    """Whether ``signal`` is ECS's SERVICE_DEPLOYMENT_COMPLETED for the rollout that
    converge started last (its deployment id is in the record)."""
    return (
        signal is not None
        and signal.kind == SignalKind.DEPLOYMENT_COMPLETED
        and env.deployment_id is not None
        and signal.deployment_id == env.deployment_id
    )


def _recorded_service(env: Environment, target: Target) -> Service:
    """The service as the record has it: ACTIVE, this environment's, running the recorded
    task definition at the desired count, its last rollout completed only if a signal
    said so (see :func:`completes_recorded_rollout`)."""
    assert env.service_name is not None
    return Service(
        name=env.service_name,
        arn="",
        status="ACTIVE",
        desired_count=target.desired_count,
        task_definition_arn=env.task_definition_arn or "",
        tags=target.names.tags(),
        rollout_state=None,
        rollout_reason=None,
        events=(),
        container_port=env.service_port,
    )


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
