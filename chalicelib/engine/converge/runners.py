"""The step runners: how each planned :class:`~chalicelib.engine.converge.model.Step` changes AWS.

:class:`StepRunner` executes one step at a time for the
:class:`~chalicelib.engine.converge.converger.Converger`, tracking what the run has found or
made in a :class:`~chalicelib.engine.converge.progress.Progress`. Claiming listener rule
priorities (and moving to another load balancer of the pool when one is full) lives here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, assert_never

from chalicelib.aws.elbv2 import LoadBalancerFull, PriorityInUse
from chalicelib.aws.errors import Conflict
from chalicelib.aws.route53 import AlreadyExists
from chalicelib.domain.environments import ConcurrentUpdate, Environment, EnvironmentStore
from chalicelib.domain.names import short_hash
from chalicelib.domain.settings import Listener, Settings
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
    NoRoom,
    RegisterTaskDefinition,
    ReleasePriority,
    RemoveImageTags,
    RetagImage,
    RetryLater,
    SetHealthCheckPath,
    StartBuild,
    StopBuild,
    TagBranchImage,
    Target,
    UpdateService,
    UpsertDns,
)
from chalicelib.engine.converge.planner import is_ours
from chalicelib.engine.converge.progress import Progress
from chalicelib.engine.taskdef import render_service

if TYPE_CHECKING:
    from chalicelib.aws.codebuild import Builds
    from chalicelib.aws.ecr import Images
    from chalicelib.aws.ecs import Containers
    from chalicelib.aws.elbv2 import LoadBalancing
    from chalicelib.aws.route53 import Dns

log = logging.getLogger(__name__)

MAX_PRIORITY = 50_000
PRIORITY_ATTEMPTS = 20


class StepRunner:
    """Runs the steps of a plan against AWS: one ``_run_<Step>`` method per step type,
    chosen by the match in :meth:`execute`.

    Every runner looks before it acts and tolerates "already done" / "already gone";
    what it learns goes into the run's :class:`Progress`, and what an interrupted run
    must find again is recorded at once through ``put`` (the converger's store write).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: EnvironmentStore,
        dns: Dns,
        load_balancing: LoadBalancing,
        containers: Containers,
        images: Images,
        builds: Builds | None,
        put: Callable[[Environment], Environment],
    ) -> None:
        self.settings = settings
        self.store = store
        self.dns = dns
        self.load_balancing = load_balancing
        self.containers = containers
        self.images = images
        self.builds = builds
        self._put = put

    def execute(self, step: AnyStep, progress: Progress, target: Target) -> None:
        """Run one step: a match over every step type, which mypy proves complete
        (``assert_never``), so a new step type without its runner does not type-check."""
        match step:
            case UpsertDns():
                self._run_UpsertDns(step, progress, target)
            case ClaimPriority():
                self._run_ClaimPriority(step, progress, target)
            case CreateTargetGroup():
                self._run_CreateTargetGroup(step, progress, target)
            case SetHealthCheckPath():
                self._run_SetHealthCheckPath(step, progress, target)
            case CreateRule():
                self._run_CreateRule(step, progress, target)
            case StopBuild():
                self._run_StopBuild(step, progress, target)
            case StartBuild():
                self._run_StartBuild(step, progress, target)
            case RetagImage():
                self._run_RetagImage(step, progress, target)
            case TagBranchImage():
                self._run_TagBranchImage(step, progress, target)
            case RegisterTaskDefinition():
                self._run_RegisterTaskDefinition(step, progress, target)
            case CreateService():
                self._run_CreateService(step, progress, target)
            case UpdateService():
                self._run_UpdateService(step, progress, target)
            case AwaitHealthyTarget():
                self._run_AwaitHealthyTarget(step, progress, target)
            case DeleteDns():
                self._run_DeleteDns(step, progress, target)
            case DeleteDnsByHost():
                self._run_DeleteDnsByHost(step, progress, target)
            case DeleteRule():
                self._run_DeleteRule(step, progress, target)
            case DeleteService():
                self._run_DeleteService(step, progress, target)
            case DeleteTargetGroup():
                self._run_DeleteTargetGroup(step, progress, target)
            case DeregisterTaskDefinitions():
                self._run_DeregisterTaskDefinitions(step, progress, target)
            case RemoveImageTags():
                self._run_RemoveImageTags(step, progress, target)
            case ReleasePriority():
                self._run_ReleasePriority(step, progress, target)
            case _:
                assert_never(step)

    def _persist_progress(self, progress: Progress, **changes: Any) -> None:
        progress.env = self._put(replace(progress.env, **changes))
        progress.unsaved = False

    def _run_UpsertDns(self, step: UpsertDns, progress: Progress, target: Target) -> None:
        owner = target.names.dns_owner
        if not step.create:
            self.dns.upsert_alias(step.host, step.alb_dns_name, step.alb_zone_id, owner)
            return
        try:
            self.dns.create_alias(step.host, step.alb_dns_name, step.alb_zone_id, owner)
        except AlreadyExists as exc:
            there = self.dns.find_alias(step.host)
            if there is None or there.owner == owner:
                # Ours (from a run cut off after its CREATE, or half of a pair left by a
                # delete that did not finish), or nothing to be seen at the name after all
                # (every record type sorts at or after "A", so the listing would show one;
                # moto answers so after a batch it applied only in part): point it where it
                # belongs.
                self.dns.upsert_alias(step.host, step.alb_dns_name, step.alb_zone_id, owner)
                return
            # Someone's record appeared at the host since converge looked: the next run
            # observes it and stops the preview rather than write over it.
            raise RetryLater(f"a DNS record appeared at {step.host}; looking again") from exc

    def _run_ClaimPriority(self, step: ClaimPriority, progress: Progress, target: Target) -> None:
        self._claim(progress, step.listener_arn, skip=())

    def _claim(self, progress: Progress, listener_arn: str, skip: Sequence[int]) -> int:
        """Claim a free priority on ``listener_arn`` and record it in the same write (the
        store's ``put_claiming``), so an interrupted run finds its claim, never leaks it."""
        slug = progress.env.slug
        start = int(short_hash(slug), 16) % MAX_PRIORITY
        for offset in range(MAX_PRIORITY):
            candidate = (start + offset) % MAX_PRIORITY + 1
            if candidate in skip:
                continue
            naming = replace(progress.env, listener_arn=listener_arn, priority=candidate)
            try:
                written = self.store.put_claiming(naming, listener_arn, candidate)
            except ConcurrentUpdate:
                # A webhook wrote the record meanwhile: claim alone, then the converger's
                # write that keeps the webhook's desired state.
                if not self.store.claim_priority(listener_arn, candidate, slug):
                    continue
                self._persist_progress(progress, listener_arn=listener_arn, priority=candidate)
            else:
                if written is None:
                    continue
                progress.env, progress.unsaved = written, False
            progress.listener_arn, progress.priority = listener_arn, candidate
            return candidate
        raise Conflict(f"no free listener rule priority on {listener_arn}")

    def _run_CreateTargetGroup(
        self, step: CreateTargetGroup, progress: Progress, target: Target
    ) -> None:
        group = self.load_balancing.create_target_group(
            step.name,
            vpc_id=self.settings.vpc_id,
            port=target.container_port,
            health_check_path=target.health_check_path,
            tags=target.names.tags(),
        )
        progress.target_group_arn = group.arn

    def _run_SetHealthCheckPath(
        self, step: SetHealthCheckPath, progress: Progress, target: Target
    ) -> None:
        self.load_balancing.set_health_check_path(step.target_group_arn, step.path)

    def _run_CreateRule(self, step: CreateRule, progress: Progress, target: Target) -> None:
        if progress.target_group_arn is None:
            found = self.load_balancing.find_target_group(target.names.target_group)
            if found is None:
                raise RetryLater(f"target group {target.names.target_group} is not there yet")
            progress.target_group_arn = found.arn
        full: list[str] = []
        for listener in self._listeners_from(step.listener_arn):
            if listener.listener_arn != progress.listener_arn:
                self._move_claim(progress, listener, target)
            try:
                self._create_rule(listener.listener_arn, step.host, progress, target)
                return
            except LoadBalancerFull as exc:
                full.append(exc.code or "full")
                log.info("%s: %s is full (%s)", target.names.slug, listener.dns_name, exc.code)
        raise NoRoom(_no_room_reason(len(full), full))

    def _listeners_from(self, first_arn: str) -> list[Listener]:
        """The pool, the environment's own listener first, then the others in order."""
        pool = list(self.settings.listeners)
        first = [item for item in pool if item.listener_arn == first_arn]
        return first + [item for item in pool if item.listener_arn != first_arn]

    def _move_claim(self, progress: Progress, listener: Listener, target: Target) -> None:
        """Claim a priority on another load balancer's listener and point DNS at it."""
        slug = target.names.slug
        old_listener, old_priority = progress.listener_arn, progress.priority
        # Claimed and recorded first, released after: an interrupted run leaves a claim
        # the record names (found again), never a record naming no claim.
        self._claim(progress, listener.listener_arn, skip=())
        if old_listener is not None and old_priority is not None:
            self.store.release_priority(old_listener, old_priority, slug)
        names = target.names
        self.dns.upsert_alias(names.host, listener.dns_name, listener.zone_id, names.dns_owner)

    def _create_rule(
        self, listener_arn: str, host: str, progress: Progress, target: Target
    ) -> None:
        assert progress.priority is not None and progress.target_group_arn is not None
        tried: list[int] = []
        for _ in range(PRIORITY_ATTEMPTS):
            try:
                rule = self.load_balancing.create_rule(
                    listener_arn,
                    priority=progress.priority,
                    host=host,
                    target_group_arn=progress.target_group_arn,
                    tags=target.names.tags(),
                )
            except PriorityInUse:
                existing = self.load_balancing.find_rule(listener_arn, host)
                if existing is not None and is_ours(existing.tags, target.names.tags()):
                    # Ours, from a run the record does not know of (a lost record): adopt it.
                    progress.priority, progress.rule_arn = existing.priority, existing.arn
                    return
                # A rule branchenv did not claim holds this priority: claim another.
                tried.append(progress.priority)
                self.store.release_priority(listener_arn, progress.priority, target.names.slug)
                self._claim(progress, listener_arn, skip=tried)
                continue
            progress.rule_arn = rule.arn
            return
        raise RetryLater(f"no free rule priority after {PRIORITY_ATTEMPTS} attempts")

    def _run_StopBuild(self, step: StopBuild, progress: Progress, target: Target) -> None:
        assert self.builds is not None
        self.builds.stop(step.build_id)

    def _run_StartBuild(self, step: StartBuild, progress: Progress, target: Target) -> None:
        if self.builds is None:
            raise RetryLater("image source is 'build' but BRANCHENV_CODEBUILD_PROJECT is not set")
        names = target.names
        build = self.builds.start(
            sha=step.sha,
            repository_uri=target.repository_uri,
            sha_tag=step.sha,
            branch_tag=names.branch_tag,
            slug=names.slug,
            idempotency_token=build_token(progress.env, step.sha),
        )
        # Written with the run's status at its end (StartBuild is a plan's last step): a
        # run cut off before that write starts the same build again within CodeBuild's
        # five minutes of idempotency, and gets this build back.
        progress.env = replace(progress.env, build_id=build.id, log_url=build.log_url)

    def _run_RetagImage(self, step: RetagImage, progress: Progress, target: Target) -> None:
        source = self.images.find_images([step.source_tag]).get(step.source_tag)
        if source is None:
            raise RetryLater(f"image {step.source_tag} disappeared from ECR")
        self.images.put_tag(source, step.sha)

    def _run_TagBranchImage(self, step: TagBranchImage, progress: Progress, target: Target) -> None:
        sha = progress.env.desired_sha
        assert sha is not None
        image = progress.sha_image or self.images.find_images([sha]).get(sha)
        if image is None:
            raise RetryLater(f"image {sha[:12]} disappeared from ECR")
        self.images.put_tag(image, step.tag)

    def _run_RegisterTaskDefinition(
        self, step: RegisterTaskDefinition, progress: Progress, target: Target
    ) -> None:
        assert target.task_definition is not None
        registered = self.containers.register_task_definition(target.task_definition)
        progress.task_definition_arn = registered.arn

    def _current_task_definition(self, progress: Progress, target: Target) -> str:
        if progress.task_definition_arn is None:
            # Registered by an earlier, interrupted run: find it again by family.
            found = self.containers.find_task_definition(target.names.task_family)
            if found is None or found.tags.get(SPEC_TAG) != target.spec:
                raise RetryLater("the task definition for this sha is not registered yet")
            progress.task_definition_arn = found.arn
        return progress.task_definition_arn

    def _run_CreateService(self, step: CreateService, progress: Progress, target: Target) -> None:
        names = target.names
        name = names.service(step.generation)
        progress.service_name = name
        if step.generation != progress.env.generation:
            # A re-created branch's next generation, a name the record does not lead to:
            # recorded before the create call, so an interrupted run looks for this name.
            # (Within a generation a repeated create is safe: ECS answers a CreateService
            # identical to an existing service with that service.)
            self._persist_progress(progress, generation=step.generation, service_name=name)
        td_arn = self._current_task_definition(progress, target)
        assert progress.target_group_arn is not None
        assert target.context is not None
        request = render_service(
            target.context,
            service_name=name,
            task_definition_arn=td_arn,
            target_group_arn=progress.target_group_arn,
        )
        try:
            created = self.containers.create_service(request)
        except Conflict as exc:
            # The new rule has not reached ECS yet, or the old service of this name still
            # drains: both pass within a short while.
            raise RetryLater(f"ECS cannot create {name} yet: {exc}") from exc
        progress.deployment_id = created.primary_deployment_id

    def _run_UpdateService(self, step: UpdateService, progress: Progress, target: Target) -> None:
        td_arn = self._current_task_definition(progress, target)
        balancers = None
        if step.container_port is not None and progress.target_group_arn is not None:
            balancers = [
                {
                    "targetGroupArn": progress.target_group_arn,
                    "containerName": target.names.container,
                    "containerPort": step.container_port,
                }
            ]
        updated = self.containers.update_service(
            step.name,
            task_definition_arn=td_arn,
            desired_count=target.desired_count,
            load_balancers=balancers,
        )
        progress.service_name = step.name
        progress.deployment_id = updated.primary_deployment_id

    def _run_AwaitHealthyTarget(
        self, step: AwaitHealthyTarget, progress: Progress, target: Target
    ) -> None:
        arn = progress.target_group_arn
        if arn is None or self.load_balancing.healthy_targets(arn) < 1:
            raise RetryLater(f"{target.names.slug}: deployment done, no healthy target yet")

    def _run_DeleteDns(self, step: DeleteDns, progress: Progress, target: Target) -> None:
        self.dns.delete_alias(step.record)

    def _run_DeleteDnsByHost(
        self, step: DeleteDnsByHost, progress: Progress, target: Target
    ) -> None:
        record = self.dns.find_alias(step.host)
        if record is not None and record.owner == target.names.dns_owner:
            self.dns.delete_alias(record)

    def _run_DeleteRule(self, step: DeleteRule, progress: Progress, target: Target) -> None:
        self.load_balancing.delete_rule(step.arn)
        progress.rule_arn = None

    def _run_DeleteService(self, step: DeleteService, progress: Progress, target: Target) -> None:
        self.containers.delete_service(step.name)

    def _run_DeleteTargetGroup(
        self, step: DeleteTargetGroup, progress: Progress, target: Target
    ) -> None:
        try:
            self.load_balancing.delete_target_group(step.arn)
        except Conflict as exc:
            raise RetryLater(f"target group still in use: {exc}") from exc
        progress.target_group_arn = None

    def _run_DeregisterTaskDefinitions(
        self, step: DeregisterTaskDefinitions, progress: Progress, target: Target
    ) -> None:
        ours = target.names.tags()
        owner = {key: ours[key] for key in OWNERSHIP_KEYS} if step.check_tags else None
        self.containers.deregister_owned_task_definitions(step.family, owner)
        progress.task_definition_arn = None

    def _run_RemoveImageTags(
        self, step: RemoveImageTags, progress: Progress, target: Target
    ) -> None:
        self.images.remove_tags(step.tags)

    def _run_ReleasePriority(
        self, step: ReleasePriority, progress: Progress, target: Target
    ) -> None:
        progress.releases.append((step.listener_arn, step.priority))
        if (step.listener_arn, step.priority) == (progress.listener_arn, progress.priority):
            progress.priority = None
            progress.listener_arn = None


def build_token(env: Environment, sha: str) -> str:
    """StartBuild's idempotency token: one per push of ``sha`` to the branch (a redelivery
    or a retry of the same push repeats it; pushing the sha again later does not)."""
    return short_hash(f"{env.slug}:{sha}:{env.triggered_at}", 32)


def _no_room_reason(load_balancers: int, codes: Sequence[str]) -> str:
    unique = "TooManyUniqueTargetGroupsPerLoadBalancer"
    which = unique if unique in codes else "TooManyRules"
    return (
        f"no room for a new preview: all {load_balancers} load balancer(s) of this "
        f"installation are full (ELB answered {which}: at most 100 target groups per load "
        "balancer, and 100 rules by default). Delete preview branches you no longer need, "
        "or add a load balancer to BRANCHENV_LISTENERS, then push again"
    )
