"""Converge: make AWS hold exactly what one environment's desired state asks for.

The only way branchenv changes AWS. It has two halves, in the shape of Chalice's own
deployer: :func:`plan` is pure (desired state + what AWS holds → a list of frozen steps,
printable as a dry run) and :class:`Converger` observes, plans and executes.

Every step looks before it acts and tolerates "already done" / "already gone", and
everything is found again by name or by tag, so converge is idempotent and safe to
interrupt after any AWS call: running it again finishes the job and leaks nothing.
Nothing is ever deleted unless its tags (or, for DNS, its TXT owner record) say it
belongs to this environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from chalicelib.aws.codebuild import Build
from chalicelib.aws.ecr import Image
from chalicelib.aws.ecs import Service, TaskDefinition
from chalicelib.aws.elbv2 import LoadBalancerFull, PriorityInUse, Rule, TargetGroup
from chalicelib.aws.errors import Conflict, NotFound
from chalicelib.aws.route53 import AliasRecord
from chalicelib.environments import (
    ConcurrentUpdate,
    Environment,
    EnvironmentStore,
    Status,
)
from chalicelib.names import EnvironmentNames, names_for, short_hash
from chalicelib.policy import check_context, failure_reason
from chalicelib.repoconfig import (
    FILE_NAME,
    ConfigError,
    OperatorConfig,
    RepoConfig,
    load_repo_config,
)
from chalicelib.settings import Listener, Settings
from chalicelib.taskdef import RenderContext, render_service, render_task_definition

if TYPE_CHECKING:
    from chalicelib.aws.codebuild import Builds
    from chalicelib.aws.ecr import Images
    from chalicelib.aws.ecs import Containers
    from chalicelib.aws.elbv2 import LoadBalancing
    from chalicelib.aws.inventory import ManagedResource
    from chalicelib.aws.route53 import Dns
    from chalicelib.notify import Notifier
    from chalicelib.runtime import Runtime

log = logging.getLogger(__name__)

MAX_PRIORITY = 50_000
SPEC_TAG = "branchenv:spec"
SHA_TAG = "branchenv:sha"
PRIORITY_ATTEMPTS = 20


class ConfigSource(Protocol):
    """Where branchenv.yml is read at a sha (GitHub)."""

    def file_contents(self, repository: str, path: str, ref: str) -> str | None: ...


class RetryLater(Exception):
    """Converge is waiting on AWS (a target to turn healthy, a rule to let go of a target
    group, a new rule to reach ECS); the worker makes the queue message visible again
    after a short, growing backoff (chalicelib.worker)."""


class NoRoom(Exception):
    """Every load balancer of the pool holds as many rules or target groups as ELB allows."""


# ----------------------------------------------------------------------------- signals


@dataclass(frozen=True)
class Signal:
    """What an AWS event told the worker; converge uses it alongside what it observes."""

    kind: str  # deployment_completed | deployment_failed | build_failed | image_pushed | …
    reason: str | None = None
    log_url: str | None = None
    sha: str | None = None
    task_arn: str | None = None  # spot_interrupted: the task ECS stopped
    deployment_id: str | None = None  # deployment_*: the ECS deployment it is about


# ----------------------------------------------------------------------------- observed


@dataclass(frozen=True)
class Observed:
    """What AWS holds for one environment, read by :meth:`Converger.observe`."""

    dns: AliasRecord | None = None
    target_group: TargetGroup | None = None
    rule: Rule | None = None
    sha_image: Image | None = None
    branch_image: Image | None = None
    task_definition: TaskDefinition | None = None
    service: Service | None = None
    source_image: Image | None = None
    build: Build | None = None


@dataclass(frozen=True)
class Target:
    """The constants converge aims at, computed before planning (so planning stays pure)."""

    names: EnvironmentNames
    listener: Listener
    image_uri: str | None
    task_definition: dict[str, Any] | None
    spec: str | None
    desired_count: int
    image_source: str = "ci"
    source_tag: str | None = None
    repository_uri: str = ""
    log_url: str | None = None
    context: RenderContext | None = None
    container_port: int = 8080
    health_check_path: str = "/"
    problem: str | None = None  # branchenv.yml invalid or a policy check failed
    excluded: str | None = None  # branchenv.yml says this branch gets no preview


# ----------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """One AWS change. ``describe`` is what a dry run prints."""

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


@dataclass(frozen=True)
class UpsertDns(Step):
    host: str
    alb_dns_name: str
    alb_zone_id: str


@dataclass(frozen=True)
class ClaimPriority(Step):
    listener_arn: str


@dataclass(frozen=True)
class CreateTargetGroup(Step):
    name: str


@dataclass(frozen=True)
class SetHealthCheckPath(Step):
    target_group_arn: str
    path: str


@dataclass(frozen=True)
class CreateRule(Step):
    listener_arn: str
    host: str


@dataclass(frozen=True)
class StopBuild(Step):
    build_id: str


@dataclass(frozen=True)
class StartBuild(Step):
    sha: str


@dataclass(frozen=True)
class RetagImage(Step):
    source_tag: str
    sha: str


@dataclass(frozen=True)
class TagBranchImage(Step):
    tag: str


@dataclass(frozen=True)
class RegisterTaskDefinition(Step):
    family: str
    spec: str


@dataclass(frozen=True)
class CreateService(Step):
    generation: int


@dataclass(frozen=True)
class UpdateService(Step):
    name: str
    container_port: int | None = None  # set when the load balancer mapping must change


@dataclass(frozen=True)
class AwaitHealthyTarget(Step):
    pass


@dataclass(frozen=True)
class DeleteDns(Step):
    record: AliasRecord


@dataclass(frozen=True)
class DeleteDnsByHost(Step):
    host: str


@dataclass(frozen=True)
class DeleteRule(Step):
    arn: str


@dataclass(frozen=True)
class DeleteService(Step):
    name: str
    scale_down_first: bool


@dataclass(frozen=True)
class DeleteTargetGroup(Step):
    arn: str


@dataclass(frozen=True)
class DeregisterTaskDefinitions(Step):
    family: str


@dataclass(frozen=True)
class RemoveBranchTag(Step):
    tag: str


@dataclass(frozen=True)
class ReleasePriority(Step):
    listener_arn: str
    priority: int


@dataclass(frozen=True)
class Plan:
    """The steps to run, then the status the environment has once they have run."""

    steps: tuple[Step, ...]
    status: Status
    reason: str | None = None
    log_url: str | None = None

    def describe(self) -> str:
        lines = [step.describe() for step in self.steps] or ["(nothing to change)"]
        lines.append(f"→ {self.status.value}" + (f": {self.reason}" if self.reason else ""))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- planning


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
        absent = _plan_absent(env, observed, target)
        extra = _leftover_steps(leftovers, absent.steps, target.names)
        return replace(absent, steps=(*absent.steps, *extra))
    return _plan_present(env, observed, target, signal)


def _leftover_steps(
    leftovers: Sequence[ManagedResource], planned: Sequence[Step], names: EnvironmentNames
) -> list[Step]:
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
        seen.add(("DeleteDnsByHost", names.host))
    steps: list[Step] = []
    for kind in order:
        for resource in leftovers:
            step = _leftover_step(resource) if resource.kind == kind else None
            if step is None or resource.env != names.slug or _step_key(step) in seen:
                continue
            seen.add(_step_key(step))
            steps.append(step)
    return steps


def _step_key(step: Step) -> tuple[str, str]:
    """What a step acts on: two steps with the same key would do the same thing."""
    first = next(iter(step.__dict__.values()), "")
    return type(step).__name__, str(first)


def _leftover_step(resource: ManagedResource) -> Step | None:
    ident = resource.identifier
    if resource.kind == "dns_record":
        return DeleteDnsByHost(ident)
    if resource.kind == "listener_rule":
        return DeleteRule(ident)
    if resource.kind == "service":
        return DeleteService(ident.rsplit("/", 1)[-1], scale_down_first=True)
    if resource.kind == "target_group":
        return DeleteTargetGroup(ident)
    if resource.kind == "task_definition":
        return DeregisterTaskDefinitions(ident.rsplit("/", 1)[-1].rsplit(":", 1)[0])
    if resource.kind == "image_tag":
        return RemoveBranchTag(ident)
    if resource.kind == "priority_claim":
        listener_arn, _, priority = ident.rpartition("#")
        return ReleasePriority(listener_arn, int(priority))
    return None


def _plan_present(
    env: Environment, observed: Observed, target: Target, signal: Signal | None
) -> Plan:
    names = target.names
    if target.excluded:
        teardown = _plan_absent(env, observed, target)
        return Plan(teardown.steps, Status.DELETED, target.excluded)
    if target.problem:
        # Nothing is changed for a configuration that fails its checks; a branch that
        # never had a good deploy keeps nothing (not even its early DNS record).
        undo = _plan_absent(env, observed, target).steps if env.deployed_sha is None else ()
        return Plan(undo, Status.FAILED, target.problem, env.log_url)
    owner_problem = _foreign_resource(observed, names)
    if owner_problem:
        return Plan((), Status.FAILED, owner_problem)
    steps: list[Step] = []
    # DNS takes longest to settle, so it goes first, even before there is an image.
    if observed.dns is None or observed.dns.alb_dns_name.rstrip(".").lower() != (
        target.listener.dns_name.rstrip(".").lower()
    ):
        steps.append(UpsertDns(names.host, target.listener.dns_name, target.listener.zone_id))
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
    steps: list[Step],
) -> Plan:
    """No image for the sha yet: build it, or wait for CI to push it."""
    sha = env.desired_sha
    assert sha is not None
    if signal and signal.kind == "build_failed" and signal.sha == sha:
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
    steps: list[Step],
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
    if (signal and signal.kind == "deployment_completed") or service.rollout_state == "COMPLETED":
        steps.append(AwaitHealthyTarget())
        return Plan(tuple(steps), Status.READY)
    return Plan(tuple(steps), Status.DEPLOYING)


def _health_check_path(observed: Observed, path: str | None) -> list[Step]:
    group = observed.target_group
    if group is None or path is None or group.health_check_path in (None, path):
        return []
    return [SetHealthCheckPath(group.arn, path)]


def _failure_of(signal: Signal | None, service: Service, current_td: str) -> bool:
    """Whether a deployment_failed signal is about the revision being deployed now: a
    deployment ECS still lists for another revision makes it a late or repeated event
    about an earlier rollout (EventBridge delivers at least once, not in order)."""
    if signal is None or signal.kind != "deployment_failed":
        return False
    listed = {deployment.id: deployment for deployment in service.deployments}
    deployment = listed.get(signal.deployment_id or "")
    return deployment is None or deployment.task_definition_arn == current_td


def _plan_absent(env: Environment, observed: Observed, target: Target) -> Plan:
    names = target.names
    ours = names.tags()
    steps: list[Step] = []
    if observed.dns is not None and observed.dns.owner == names.dns_owner:
        steps.append(DeleteDns(observed.dns))
    if observed.rule is not None and _is_ours(observed.rule.tags, ours):
        steps.append(DeleteRule(observed.rule.arn))
    service = observed.service
    if service is not None and service.status == "ACTIVE" and _is_ours(service.tags, ours):
        steps.append(DeleteService(service.name, scale_down_first=service.desired_count > 0))
    if observed.target_group is not None and _is_ours(observed.target_group.tags, ours):
        steps.append(DeleteTargetGroup(observed.target_group.arn))
    if observed.task_definition is not None and _is_ours(observed.task_definition.tags, ours):
        steps.append(DeregisterTaskDefinitions(names.task_family))
    if observed.branch_image is not None:
        steps.append(RemoveBranchTag(names.branch_tag))
    if env.priority is not None and env.listener_arn is not None:
        steps.append(ReleasePriority(env.listener_arn, env.priority))
    # The reason it went (set by the reaper: branch gone, idle past its TTL) is kept.
    return Plan(tuple(steps), Status.DELETED, env.reason)


OWNERSHIP_KEYS = ("branchenv:managed", "branchenv:app", "branchenv:env")


def _is_ours(tags: dict[str, str], ours: dict[str, str]) -> bool:
    return all(tags.get(key) == ours[key] for key in OWNERSHIP_KEYS)


def _foreign_resource(observed: Observed, names: EnvironmentNames) -> str | None:
    """A reason to stop when a resource with our name exists but is not ours."""
    ours = names.tags()
    if observed.dns is not None and observed.dns.owner != names.dns_owner:
        return (
            f"a DNS record for {names.host} already exists and branchenv did not make it; "
            "remove it or rename the branch"
        )
    if observed.target_group is not None and not _is_ours(observed.target_group.tags, ours):
        return (
            f"a target group named {names.target_group} exists without branchenv's tags; "
            "remove it or rename the branch"
        )
    if observed.rule is not None and not _is_ours(observed.rule.tags, ours):
        return (
            f"a listener rule for {names.host} exists without branchenv's tags; "
            "remove it or rename the branch"
        )
    service = observed.service
    if service is not None and service.status != "INACTIVE" and not _is_ours(service.tags, ours):
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


# ----------------------------------------------------------------------------- executing


@dataclass
class _Progress:
    """What the executor has learnt so far in this run (ARNs of what it found or made)."""

    env: Environment
    listener_arn: str | None = None
    priority: int | None = None
    target_group_arn: str | None = None
    rule_arn: str | None = None
    task_definition_arn: str | None = None
    service_name: str | None = None


@dataclass(frozen=True)
class ConvergeResult:
    """What one converge run did."""

    environment: Environment
    plan: Plan


class Converger:
    """Observes AWS for one environment, plans, executes, records progress, notifies."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: EnvironmentStore,
        dns: Dns,
        load_balancing: LoadBalancing,
        containers: Containers,
        images: Images,
        builds: Builds | None = None,
        notifier: Notifier | None = None,
        config_source: ConfigSource | None = None,
        operator: OperatorConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dns = dns
        self.load_balancing = load_balancing
        self.containers = containers
        self.images = images
        self.builds = builds
        self.notifier = notifier
        self.config_source = config_source
        self.operator = operator or OperatorConfig.from_settings(settings)
        self._config_texts: dict[tuple[str, str], str | None] = {}
        self.clock = clock

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> Converger:
        from chalicelib.aws.codebuild import Builds
        from chalicelib.aws.ecr import Images
        from chalicelib.aws.ecs import Containers
        from chalicelib.aws.elbv2 import LoadBalancing
        from chalicelib.aws.route53 import Dns

        s, c = runtime.settings, runtime.clients
        return cls(
            settings=s,
            store=runtime.store,
            dns=Dns(c.client("route53"), s.hosted_zone_id),
            load_balancing=LoadBalancing(c.client("elbv2")),
            containers=Containers(c.client("ecs"), s.cluster),
            images=Images(c.client("ecr"), s.ecr_repository),
            builds=Builds(c.client("codebuild"), s.codebuild_project)
            if s.codebuild_project
            else None,
            notifier=runtime.notifier,
            config_source=runtime.github,
        )

    # -- public

    def names(self, env: Environment) -> EnvironmentNames:
        """Names from the record's own slug (an orphan's tombstone has no exact branch)."""
        s = self.settings
        names = names_for(s.app_name, env.repository, env.branch, s.preview_domain)
        return names if names.slug == env.slug else replace(names, slug=env.slug)

    def dry_run(self, slug: str, signal: Signal | None = None) -> Plan | None:
        """The plan converge would run now, without changing anything."""
        env = self.store.get(slug)
        if env is None:
            return None
        target = self._target(env)
        return plan(env, self.observe(env, target), target, signal)

    def converge(
        self,
        slug: str,
        signal: Signal | None = None,
        leftovers: Sequence[ManagedResource] = (),
        *,
        env: Environment | None = None,
    ) -> ConvergeResult | None:
        """Make AWS match the desired state of ``slug``; None if there is no such record.
        ``env`` is the record the caller has just read or written (saves a read)."""
        env = env if env is not None and env.slug == slug else self.store.get(slug)
        if env is None:
            return None
        target = self._target(env)
        observed = self.observe(env, target)
        the_plan = plan(env, observed, target, signal, leftovers)
        log.info("converge %s (%s): %s", slug, env.desired, the_plan.describe())
        progress = _progress_from(self._start(env, the_plan), observed, target)
        try:
            for step in the_plan.steps:
                self._execute(step, progress, target)
        except NoRoom as full:
            return self._undo_for_lack_of_room(progress, target, str(full))
        env = self._finish(progress, the_plan, target, signal)
        return ConvergeResult(env, the_plan)

    def give_up(self, slug: str, reason: str) -> Environment | None:
        """Stop waiting: a wait outlasted its budget (the worker's backoff chain). The
        environment ends ``failed`` with ``reason``; nothing is retried until a new push
        or the reaper's next sweep."""
        env = self.store.get(slug)
        waiting = (Status.PENDING, Status.BUILDING, Status.DEPLOYING)
        if env is None or env.desired != "present" or env.status not in waiting:
            return env  # a ready preview stays ready; the reaper's sweep converges again
        return self._save(env.with_status(Status.FAILED, reason=reason, now=self.clock()))

    def _undo_for_lack_of_room(
        self, progress: _Progress, target: Target, reason: str
    ) -> ConvergeResult:
        """No load balancer has room: remove what this run made for a branch that serves
        nothing yet (DNS record, target group, claim), then fail with ``reason``. A branch
        that serves (its rule removed by hand, say) keeps everything it has."""
        env = replace(progress.env, listener_arn=progress.listener_arn, priority=progress.priority)
        observed = self.observe(env, target)
        serves = env.deployed_sha is not None or observed.service is not None
        undo = () if serves else _plan_absent(env, observed, target).steps
        the_plan = Plan(undo, Status.FAILED, reason)
        log.warning("converge %s: %s", env.slug, reason)
        for step in undo:
            self._execute(step, progress, target)
        return ConvergeResult(self._finish(progress, the_plan, target, None), the_plan)

    def observe(self, env: Environment, target: Target) -> Observed:
        """Read what AWS holds for this environment: a fixed handful of calls."""
        names = target.names
        listener_arn = env.listener_arn or target.listener.listener_arn
        wanted_tags = [names.branch_tag]
        if env.desired_sha and env.desired == "present":
            wanted_tags.insert(0, env.desired_sha)
            if target.source_tag:
                wanted_tags.append(target.source_tag)
        found = self.images.find_images(wanted_tags)
        build = None
        missing_image = env.desired_sha is not None and env.desired_sha not in found
        if missing_image and env.build_id and self.builds and target.image_source == "build":
            build = self.builds.get(env.build_id)
        service_name = env.service_name or names.service(env.generation)
        return Observed(
            source_image=found.get(target.source_tag) if target.source_tag else None,
            build=build,
            dns=self.dns.find_alias(names.host),
            target_group=self.load_balancing.find_target_group(names.target_group),
            rule=self.load_balancing.find_rule(listener_arn, names.host),
            sha_image=found.get(env.desired_sha) if env.desired_sha else None,
            branch_image=found.get(names.branch_tag),
            task_definition=self.containers.find_task_definition(names.task_family),
            service=self.containers.find_service(service_name),
        )

    # -- internals

    def _target(self, env: Environment) -> Target:
        names = self.names(env)
        listener = self._listener_for(env, names)
        repository_uri = self.images.repository_uri()
        mode = self.settings.image_source
        config, problem = self.repo_config(env)
        excluded = None
        if not config.branches.wants(env.branch, default_branch=None):
            excluded = f"{FILE_NAME} excludes branch {env.branch!r} from previews"
        ctx = RenderContext(self.settings, names, env.desired_sha or "", "", config=config)
        image_uri = request = spec = source_tag = None
        if env.desired == "present" and env.desired_sha and problem is None:
            image_uri = f"{repository_uri}:{env.desired_sha}"
            ctx = RenderContext(self.settings, names, env.desired_sha, image_uri, config=config)
            if mode == "retag" and self.settings.retag_pattern:
                source_tag = retag_source(self.settings.retag_pattern, env.desired_sha, names)
            violations = check_context(ctx, operator=self.operator)
            if violations:
                problem = failure_reason(violations)
            request = render_task_definition(ctx)
            spec = spec_fingerprint(request)
            request["tags"] = [*request["tags"], {"key": SPEC_TAG, "value": spec}]
        service = ctx.service_spec
        return Target(
            names,
            listener,
            image_uri,
            request,
            spec,
            service.desired_count,
            image_source=mode,
            source_tag=source_tag,
            repository_uri=repository_uri,
            log_url=log_group_url(self.settings.region, names.log_group, names.slug),
            context=ctx,
            container_port=service.container_port,
            health_check_path=service.health_check_path,
            problem=problem,
            excluded=excluded,
        )

    def repo_config(self, env: Environment) -> tuple[RepoConfig, str | None]:
        """The branch's branchenv.yml at the desired sha (defaults when there is none),
        or the defaults and the reason the file cannot be used."""
        text = None
        if self.config_source is not None and env.desired == "present":
            ref = env.desired_sha or env.branch
            key = (env.repository, ref)
            if key not in self._config_texts:
                try:
                    text = self.config_source.file_contents(env.repository, FILE_NAME, ref)
                except Exception as exc:
                    raise RetryLater(f"could not read {FILE_NAME} from GitHub: {exc}") from exc
                if env.desired_sha:  # a sha's file never changes; a branch's does
                    self._config_texts[key] = text
            else:
                text = self._config_texts[key]
        try:
            return load_repo_config(text, operator=self.operator), None
        except ConfigError as exc:
            return load_repo_config(None, operator=self.operator), str(exc)

    def _listener_for(self, env: Environment, names: EnvironmentNames) -> Listener:
        pool = self.settings.listeners
        for listener in pool:
            if listener.listener_arn == env.listener_arn:
                return listener
        return pool[int(short_hash(names.slug), 16) % len(pool)]

    def _start(self, env: Environment, the_plan: Plan) -> Environment:
        if env.desired == "absent" and the_plan.steps and env.status != Status.DELETING:
            # The reason it goes (branch gone, idle past its TTL) stays while it goes.
            return self._save(env.with_status(Status.DELETING, reason=env.reason, now=self.clock()))
        waiting = the_plan.status in (Status.BUILDING, Status.PENDING)
        if env.desired == "present" and waiting and env.status != the_plan.status:
            return self._save(env.with_status(the_plan.status, now=self.clock()))
        return env

    def _finish(
        self, progress: _Progress, the_plan: Plan, target: Target, signal: Signal | None
    ) -> Environment:
        env = replace(
            progress.env,
            listener_arn=progress.listener_arn,
            priority=progress.priority,
            target_group_arn=progress.target_group_arn,
            rule_arn=progress.rule_arn,
            service_name=progress.service_name,
            task_definition_arn=progress.task_definition_arn,
        )
        now = self.clock()
        status, reason, log_url = the_plan.status, the_plan.reason, the_plan.log_url
        if status == Status.DELETED:
            env = replace(
                env,
                listener_arn=None,
                priority=None,
                target_group_arn=None,
                rule_arn=None,
                task_definition_arn=None,
                expires_at=int(now + self.settings.history_days * 86400),
            )
        if status == Status.READY and env.desired_sha:
            # Only a commit that became ready is "deployed": while the next one deploys,
            # or after ECS rolled it back, the previous one is what serves.
            env = replace(
                env,
                deployed_sha=env.desired_sha,
                image_uri=target.image_uri,
                serving_health_check_path=target.health_check_path,
            )
        if status == Status.READY and env.status != Status.READY:
            env = _record_ready_time(env, now)
        if _new_spot_interruption(signal, env):
            # ECS replaces the task itself; each interrupted task is counted once.
            assert signal is not None
            env = replace(
                env,
                spot_interruptions=env.spot_interruptions + 1,
                last_spot_task=signal.task_arn,
            )
        changed = (status, reason) != (env.status, env.reason) or env != progress.env
        if status != env.status or reason != env.reason:
            env = replace(env, status=status, reason=reason, log_url=log_url, updated_at=now)
        return self._save(env) if changed else env

    def _save(self, env: Environment) -> Environment:
        """Notify, then persist ``env`` with what was notified, in one write. Notifiers are
        idempotent (they compare with what they last sent), so a write lost to a race
        costs no duplicate message."""
        if self.notifier is not None:
            env = replace(env, notifications=self.notifier.environment_changed(env).notifications)
        return self._put(env)

    def _put(self, env: Environment) -> Environment:
        try:
            return self.store.put(env)
        except ConcurrentUpdate:
            # A webhook changed the desired state meanwhile: keep its desired fields and
            # this run's progress; the worker converges again for the newer event.
            latest = self.store.get(env.slug)
            if latest is None:
                raise
            merged = replace(
                env,
                desired=latest.desired,
                desired_sha=latest.desired_sha,
                ordering=latest.ordering,
                pusher=latest.pusher,
                commit_url=latest.commit_url,
                triggered_at=latest.triggered_at,
                version=latest.version,
            )
            return self.store.put(merged)

    def _persist_progress(self, progress: _Progress, **changes: Any) -> None:
        progress.env = self._put(replace(progress.env, **changes))

    # -- steps

    def _execute(self, step: Step, progress: _Progress, target: Target) -> None:
        handler = getattr(self, f"_run_{type(step).__name__}")
        handler(step, progress, target)

    def _run_UpsertDns(self, step: UpsertDns, progress: _Progress, target: Target) -> None:
        self.dns.upsert_alias(
            step.host, step.alb_dns_name, step.alb_zone_id, target.names.dns_owner
        )

    def _run_ClaimPriority(self, step: ClaimPriority, progress: _Progress, target: Target) -> None:
        priority = self._claim(step.listener_arn, target.names.slug, skip=())
        progress.listener_arn, progress.priority = step.listener_arn, priority
        # Recorded at once, so an interrupted run finds its claim instead of leaking it.
        self._persist_progress(progress, listener_arn=step.listener_arn, priority=priority)

    def _claim(self, listener_arn: str, slug: str, skip: Sequence[int]) -> int:
        start = int(short_hash(slug), 16) % MAX_PRIORITY
        for offset in range(MAX_PRIORITY):
            candidate = (start + offset) % MAX_PRIORITY + 1
            if candidate in skip:
                continue
            if self.store.claim_priority(listener_arn, candidate, slug):
                return candidate
        raise Conflict(f"no free listener rule priority on {listener_arn}")

    def _run_CreateTargetGroup(
        self, step: CreateTargetGroup, progress: _Progress, target: Target
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
        self, step: SetHealthCheckPath, progress: _Progress, target: Target
    ) -> None:
        self.load_balancing.set_health_check_path(step.target_group_arn, step.path)

    def _run_CreateRule(self, step: CreateRule, progress: _Progress, target: Target) -> None:
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

    def _move_claim(self, progress: _Progress, listener: Listener, target: Target) -> None:
        """Claim a priority on another load balancer's listener and point DNS at it."""
        slug = target.names.slug
        old_listener, old_priority = progress.listener_arn, progress.priority
        # Claimed and recorded first, released after: an interrupted run leaves a claim
        # the record names (found again), never a record naming no claim.
        priority = self._claim(listener.listener_arn, slug, skip=())
        progress.listener_arn, progress.priority = listener.listener_arn, priority
        self._persist_progress(progress, listener_arn=listener.listener_arn, priority=priority)
        if old_listener is not None and old_priority is not None:
            self.store.release_priority(old_listener, old_priority, slug)
        names = target.names
        self.dns.upsert_alias(names.host, listener.dns_name, listener.zone_id, names.dns_owner)

    def _create_rule(
        self, listener_arn: str, host: str, progress: _Progress, target: Target
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
                # A rule branchenv did not claim holds this priority: claim another.
                tried.append(progress.priority)
                self.store.release_priority(listener_arn, progress.priority, target.names.slug)
                priority = self._claim(listener_arn, target.names.slug, skip=tried)
                progress.priority = priority
                self._persist_progress(progress, priority=priority)
                continue
            progress.rule_arn = rule.arn
            return
        raise RetryLater(f"no free rule priority after {PRIORITY_ATTEMPTS} attempts")

    def _run_StopBuild(self, step: StopBuild, progress: _Progress, target: Target) -> None:
        assert self.builds is not None
        self.builds.stop(step.build_id)

    def _run_StartBuild(self, step: StartBuild, progress: _Progress, target: Target) -> None:
        if self.builds is None:
            raise RetryLater("image source is 'build' but BRANCHENV_CODEBUILD_PROJECT is not set")
        names = target.names
        build = self.builds.start(
            sha=step.sha,
            repository_uri=target.repository_uri,
            sha_tag=step.sha,
            branch_tag=names.branch_tag,
            slug=names.slug,
        )
        # Recorded at once, so a retry waits for this build instead of starting another.
        self._persist_progress(progress, build_id=build.id, log_url=build.log_url)

    def _run_RetagImage(self, step: RetagImage, progress: _Progress, target: Target) -> None:
        source = self.images.find_images([step.source_tag]).get(step.source_tag)
        if source is None:
            raise RetryLater(f"image {step.source_tag} disappeared from ECR")
        self.images.put_tag(source, step.sha)

    def _run_TagBranchImage(
        self, step: TagBranchImage, progress: _Progress, target: Target
    ) -> None:
        sha = progress.env.desired_sha
        assert sha is not None
        image = self.images.find_images([sha]).get(sha)
        if image is None:
            raise RetryLater(f"image {sha[:12]} disappeared from ECR")
        self.images.put_tag(image, step.tag)

    def _run_RegisterTaskDefinition(
        self, step: RegisterTaskDefinition, progress: _Progress, target: Target
    ) -> None:
        assert target.task_definition is not None
        registered = self.containers.register_task_definition(target.task_definition)
        progress.task_definition_arn = registered.arn

    def _current_task_definition(self, progress: _Progress, target: Target) -> str:
        if progress.task_definition_arn is None:
            # Registered by an earlier, interrupted run: find it again by family.
            found = self.containers.find_task_definition(target.names.task_family)
            if found is None or found.tags.get(SPEC_TAG) != target.spec:
                raise RetryLater("the task definition for this sha is not registered yet")
            progress.task_definition_arn = found.arn
        return progress.task_definition_arn

    def _run_CreateService(self, step: CreateService, progress: _Progress, target: Target) -> None:
        names = target.names
        name = names.service(step.generation)
        # Recorded before the create call, so an interrupted run looks for this name.
        progress.service_name = name
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
            self.containers.create_service(request)
        except Conflict as exc:
            # The new rule has not reached ECS yet, or the old service of this name still
            # drains: both pass within a short while.
            raise RetryLater(f"ECS cannot create {name} yet: {exc}") from exc

    def _run_UpdateService(self, step: UpdateService, progress: _Progress, target: Target) -> None:
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
        self.containers.update_service(
            step.name,
            task_definition_arn=td_arn,
            desired_count=target.desired_count,
            load_balancers=balancers,
        )
        progress.service_name = step.name

    def _run_AwaitHealthyTarget(
        self, step: AwaitHealthyTarget, progress: _Progress, target: Target
    ) -> None:
        arn = progress.target_group_arn
        if arn is None or self.load_balancing.healthy_targets(arn) < 1:
            raise RetryLater(f"{target.names.slug}: deployment done, no healthy target yet")

    def _run_DeleteDns(self, step: DeleteDns, progress: _Progress, target: Target) -> None:
        self.dns.delete_alias(step.record)

    def _run_DeleteDnsByHost(
        self, step: DeleteDnsByHost, progress: _Progress, target: Target
    ) -> None:
        record = self.dns.find_alias(step.host)
        if record is not None and record.owner == target.names.dns_owner:
            self.dns.delete_alias(record)

    def _run_DeleteRule(self, step: DeleteRule, progress: _Progress, target: Target) -> None:
        self.load_balancing.delete_rule(step.arn)
        progress.rule_arn = None

    def _run_DeleteService(self, step: DeleteService, progress: _Progress, target: Target) -> None:
        if step.scale_down_first:
            try:
                self.containers.update_service(step.name, desired_count=0)
            except NotFound:
                return  # deleted since it was observed
        self.containers.delete_service(step.name)

    def _run_DeleteTargetGroup(
        self, step: DeleteTargetGroup, progress: _Progress, target: Target
    ) -> None:
        try:
            self.load_balancing.delete_target_group(step.arn)
        except Conflict as exc:
            raise RetryLater(f"target group still in use: {exc}") from exc
        progress.target_group_arn = None

    def _run_DeregisterTaskDefinitions(
        self, step: DeregisterTaskDefinitions, progress: _Progress, target: Target
    ) -> None:
        ours = target.names.tags()
        owner = {key: ours[key] for key in OWNERSHIP_KEYS}
        self.containers.deregister_owned_task_definitions(step.family, owner)
        progress.task_definition_arn = None

    def _run_RemoveBranchTag(
        self, step: RemoveBranchTag, progress: _Progress, target: Target
    ) -> None:
        self.images.remove_tag(step.tag)

    def _run_ReleasePriority(
        self, step: ReleasePriority, progress: _Progress, target: Target
    ) -> None:
        self.store.release_priority(step.listener_arn, step.priority, target.names.slug)
        progress.priority = None
        progress.listener_arn = None


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


def _new_spot_interruption(signal: Signal | None, env: Environment) -> bool:
    if signal is None or signal.kind != "spot_interrupted":
        return False
    return signal.task_arn is None or signal.task_arn != env.last_spot_task


def _no_room_reason(load_balancers: int, codes: Sequence[str]) -> str:
    unique = "TooManyUniqueTargetGroupsPerLoadBalancer"
    which = unique if unique in codes else "TooManyRules"
    return (
        f"no room for a new preview: all {load_balancers} load balancer(s) of this "
        f"installation are full (ELB answered {which}: at most 100 target groups per load "
        "balancer, and 100 rules by default). Delete preview branches you no longer need, "
        "or add a load balancer to BRANCHENV_LISTENERS, then push again"
    )


def log_group_url(region: str, log_group: str, stream_prefix: str) -> str:
    """The CloudWatch console page of a log group, showing one environment's streams."""

    def console(text: str) -> str:  # the console's own escaping: URL-encode, then % → $
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    return (
        f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{console(log_group)}"
        f"{console('?logStreamNameFilter=' + stream_prefix)}"
    )


def retag_source(pattern: str, sha: str, names: EnvironmentNames) -> str:
    """The ECR tag a ``retag`` installation adopts for ``sha``; settings make sure the
    pattern names the sha, so it can never be ``latest``."""
    return pattern.format(sha=sha, short_sha=sha[:7], slug=names.slug)


def _progress_from(env: Environment, observed: Observed, target: Target) -> _Progress:
    """Start from what the record and AWS already hold."""
    td = observed.task_definition
    return _Progress(
        env=env,
        listener_arn=env.listener_arn,
        priority=env.priority,
        target_group_arn=observed.target_group.arn if observed.target_group else None,
        rule_arn=observed.rule.arn if observed.rule else None,
        task_definition_arn=td.arn if td and td.tags.get(SPEC_TAG) == target.spec else None,
        service_name=observed.service.name if observed.service else env.service_name,
    )


def _record_ready_time(env: Environment, now: float) -> Environment:
    """Keep the last push-to-ready durations (oldest first, the newest last, at most ten)."""
    if env.triggered_at is None:
        return replace(env, ready_at=now)
    seconds = round(now - env.triggered_at, 1)
    return replace(env, ready_at=now, ready_seconds=(*env.ready_seconds, seconds)[-10:])
