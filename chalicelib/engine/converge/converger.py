"""The Converger: observe one environment in AWS, plan, run the steps, record, notify.

It builds the :class:`Target` (names, listener, branchenv.yml at the sha, the rendered
task definition and its policy verdict), reads what AWS holds (:meth:`Converger.observe`),
asks the pure planner for a :class:`Plan`, hands each step to a
:class:`~chalicelib.engine.converge.runners.StepRunner`, then saves the environment's new status
(notifying first) without losing a desired state a webhook wrote meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.aws.errors import Conflict, NotFound
from chalicelib.domain.environments import (
    Environment,
    EnvironmentStore,
    Status,
    StoreError,
    retry_concurrent_updates,
)
from chalicelib.domain.names import EnvironmentNames, names_of
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.kinds import Context
from chalicelib.engine.converge.kinds import dns as dns_kind
from chalicelib.engine.converge.kinds import images as image_kind
from chalicelib.engine.converge.kinds import rule as rule_kind
from chalicelib.engine.converge.kinds import service as service_kind
from chalicelib.engine.converge.kinds import target_group as target_group_kind
from chalicelib.engine.converge.kinds import task_definition as task_definition_kind
from chalicelib.engine.converge.model import (
    AnyStep,
    NoRoom,
    Observed,
    Plan,
    RetryLater,
    Signal,
    Target,
)
from chalicelib.engine.converge.planner import plan, plan_absent
from chalicelib.engine.converge.progress import (
    Progress,
    new_spot_interruption,
    progress_from,
    with_ready_time,
    woke,
)
from chalicelib.engine.converge.recorded import (
    can_trust,
    holdings_after,
    holdings_while_tearing_down,
    observed_from_record,
)
from chalicelib.engine.converge.repo_configs import ConfigSource, RepoConfigSource
from chalicelib.engine.converge.runners import StepRunner
from chalicelib.engine.converge.targets import TargetBuilder
from chalicelib.engine.policy import OperatorPolicy
from chalicelib.engine.repoconfig import (
    RepoDefaults,
    repo_defaults,
)

if TYPE_CHECKING:
    from chalicelib.aws.codebuild import Builds
    from chalicelib.aws.ecr import Images
    from chalicelib.aws.ecs import Containers
    from chalicelib.aws.elbv2 import LoadBalancing
    from chalicelib.aws.route53 import Dns
    from chalicelib.domain.resources import ManagedResource
    from chalicelib.notify import Notifier

log = logging.getLogger(__name__)


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
        operator: OperatorPolicy | None = None,
        defaults: RepoDefaults | None = None,
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
        self.repo_configs = RepoConfigSource(config_source, defaults or repo_defaults(settings))
        self.targets = TargetBuilder(
            settings=settings,
            store=store,
            repository_uri=images.repository_uri,
            configs=self.repo_configs,
            operator=operator or OperatorPolicy.from_settings(settings),
        )
        self.clock = clock

    @property
    def config_source(self) -> ConfigSource | None:
        """Where branchenv.yml is read (GitHub), through :attr:`repo_configs`, which the
        runtime shares with the reaper."""
        return self.repo_configs.files

    @config_source.setter
    def config_source(self, source: ConfigSource | None) -> None:
        self.repo_configs.files = source

    # -- public

    def names(self, env: Environment) -> EnvironmentNames:
        """Names from the record's own slug (an orphan's tombstone has no exact branch)."""
        return names_of(env, self.settings.app_name, self.settings.preview_domain)

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
        unsaved: bool = False,
        observe_all: bool = False,
    ) -> ConvergeResult | None:
        """Make AWS match the desired state of ``slug``; None if there is no such record.
        ``env`` is the record the caller has just read or written (saves a read), or with
        ``unsaved`` a desired state not written yet, which this run's first write carries
        (chalicelib/domain/desired.py, ``desire_of``). What a known record says converge
        made is trusted (chalicelib/engine/converge/recorded.py) unless ``observe_all``
        (the reaper's sweep, where drift is repaired)."""
        env = env if env is not None and env.slug == slug else self.store.get(slug)
        if env is None:
            return None
        target = self._target(env)
        trusted = can_trust(env) and not observe_all
        observed = (
            self.observe_from_record(env, target, signal) if trusted else self.observe(env, target)
        )
        the_plan = plan(env, observed, target, signal, leftovers)
        log.info("converge %s (%s): %s", slug, env.desired, the_plan.describe())
        progress = progress_from(env, observed, target)
        progress.unsaved = unsaved
        runner = self._step_runner()
        changing = False
        done: list[AnyStep] = []
        try:
            for step in the_plan.steps:
                changing = changing or step.changes_aws
                runner.execute(step, progress, target)
                done.append(step)
        except RetryLater:
            if env.desired == "absent" and (changing or env.status != Status.DELETING):
                self._record_teardown_wait(progress, done, trusted=trusted)
            elif the_plan.waiting is not None:
                # Where the plan stands (a wake waiting for its healthy target): recorded
                # with the steps done, so the next delivery plans only the rest.
                waits = Plan(tuple(done), the_plan.waiting, the_plan.waiting_reason)
                self._finish(progress, waits, target, signal, observed)
            elif changing and progress.env.known:
                self._forget_holdings(progress.env)
            raise
        except NoRoom as full:
            return self._undo_for_lack_of_room(runner, progress, target, str(full))
        except (Conflict, NotFound) as surprise:
            if not trusted:
                raise
            # AWS contradicts the record (a name taken, something recorded is gone): look
            # at everything and plan again, now, rather than after a failed delivery.
            log.info("%s: AWS differs from the record (%s); observing all", slug, surprise)
            self._forget_holdings(progress.env)
            return self.converge(slug, signal, leftovers, observe_all=True)
        except BaseException:
            if changing and progress.env.known:
                self._forget_holdings(progress.env)
            raise
        env = self._finish(progress, the_plan, target, signal, observed)
        return ConvergeResult(env, the_plan)

    def _record_teardown_wait(
        self, progress: Progress, done: Sequence[AnyStep], *, trusted: bool
    ) -> None:
        """A teardown waits on AWS (a target group its deleted rule still holds for a
        while): shown ``deleting`` from now on, and, when it was planned from a known
        record, the record keeps what is left, so the redelivery plans only the rest
        without observing everything again."""
        # The record's own task definition and service stay until a step removes them (the
        # run's progress knows no task definition for a teardown: there is no target spec).
        known = trusted and progress.env.known
        env = replace(
            progress.env,
            listener_arn=progress.listener_arn,
            priority=progress.priority,
            target_group_arn=progress.target_group_arn,
            rule_arn=progress.rule_arn,
            **holdings_while_tearing_down(done, known=known),
        )
        if env.status != Status.DELETING:
            # The reason it goes (branch gone, idle past its TTL) stays while it goes.
            env = env.with_status(Status.DELETING, reason=env.reason, now=self.clock())
        progress.env = self._save(env, releases=progress.releases)
        progress.releases.clear()

    def _forget_holdings(self, env: Environment) -> None:
        """A run that changed AWS stopped half-way: the record may no longer say what AWS
        holds, so the next run observes every kind. Should this write fail too, or the run
        be cut off with no exception (a Lambda timeout), the record stays trusted: every
        step is safe to repeat from it, and a repeat that meets what the cut-off run made
        (a CREATE of a DNS record that is there, a service name taken, a priority held by
        our own rule) adopts it or stops with an error, which lands here again."""
        self._put(replace(env, known=False))

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
        self, runner: StepRunner, progress: Progress, target: Target, reason: str
    ) -> ConvergeResult:
        """No load balancer has room: remove what this run made for a branch that serves
        nothing yet (DNS record, target group, claim), then fail with ``reason``. A branch
        that serves (its rule removed by hand, say) keeps everything it has."""
        env = replace(progress.env, listener_arn=progress.listener_arn, priority=progress.priority)
        observed = self.observe(env, target)
        serves = env.deployed_sha is not None or observed.service is not None
        undo = () if serves else plan_absent(env, observed, target).steps
        the_plan = Plan(undo, Status.FAILED, reason)
        log.warning("converge %s: %s", env.slug, reason)
        for step in undo:
            runner.execute(step, progress, target)
        return ConvergeResult(self._finish(progress, the_plan, target, None), the_plan)

    def observe_from_record(
        self, env: Environment, target: Target, signal: Signal | None = None
    ) -> Observed:
        """What the record says AWS holds, with only the reads the next decision needs."""
        builds = self.builds
        return observed_from_record(
            env,
            target,
            signal,
            read_service=self.containers.find_service,
            read_images=self.images.find_images,
            read_build=builds.get if builds is not None else lambda _: None,
        )

    def observe(self, env: Environment, target: Target) -> Observed:
        """Read what AWS holds for this environment, every kind by name and tag (each
        kind's ``find``, chalicelib/engine/converge/kinds/): a fixed handful of calls."""
        ctx, names = self._context(), target.names
        found, build = image_kind.find(ctx, env, target)
        return Observed(
            source_image=found.get(target.source_tag) if target.source_tag else None,
            build=build,
            dns=dns_kind.find(ctx, names),
            target_group=target_group_kind.find(ctx, names),
            rule=rule_kind.find(ctx, env, target),
            sha_image=found.get(env.desired_sha) if env.desired_sha else None,
            branch_image=found.get(names.branch_tag),
            task_definition=task_definition_kind.find(ctx, names),
            service=service_kind.find(ctx, env, names),
        )

    # -- internals

    def _target(self, env: Environment) -> Target:
        return self.targets.target(env, self.names(env))

    def _finish(
        self,
        progress: Progress,
        the_plan: Plan,
        target: Target,
        signal: Signal | None,
        observed: Observed | None = None,
    ) -> Environment:
        env = progress.recorded()
        if env.desired == "present":  # the file was read at the desired sha
            env = replace(
                env,
                ttl_hours=target.ttl_hours,
                kept=target.kept,
                sleep_after_minutes=target.sleep_after_minutes,
            )
        arn = progress.task_definition_arn
        if arn is not None and arn not in env.task_definitions:
            env = replace(env, task_definitions=(*env.task_definitions, arn))
        holdings: dict[str, Any] = {"known": False}
        if observed is not None:
            holdings = holdings_after(
                env,
                observed,
                the_plan,
                target,
                target_group_arn=progress.target_group_arn,
                rule_arn=progress.rule_arn,
                task_definition_arn=progress.task_definition_arn,
            )
        env = replace(env, **holdings)
        now = self.clock()
        status, reason, log_url = the_plan.status, the_plan.reason, the_plan.log_url
        if status != Status.BUILDING and env.build_id is not None:
            # The build is over (its image is there, or it failed, or the branch went):
            # the next push has no build to look at or to stop.
            env = replace(env, build_id=None)
        if status == Status.DELETED:
            env = replace(
                env,
                listener_arn=None,
                priority=None,
                target_group_arn=None,
                rule_arn=None,
                task_definition_arn=None,
                task_definitions=(),
                service_port=None,
                deployment_id=None,
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
        if status == Status.READY and env.status != Status.READY and not woke(the_plan):
            env = with_ready_time(env, now)
        if status == Status.SLEEPING and env.status != Status.SLEEPING:
            env = replace(env, slept_at=now)
        elif status == Status.READY:
            env = replace(env, slept_at=None)
        if new_spot_interruption(signal, env):
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
        if changed or progress.releases or progress.unsaved:
            return self._save(env, releases=progress.releases)
        return env

    def _save(self, env: Environment, releases: Sequence[tuple[str, int]] = ()) -> Environment:
        """Notify, then persist ``env`` with what was notified (and give up ``releases``) in
        one write. Notifiers are idempotent (they compare with what they last sent), so a
        write lost to a race costs no duplicate message."""
        if self.notifier is not None:
            env = replace(env, notifications=self.notifier.environment_changed(env).notifications)
        return self._put(env, releases)

    def _step_runner(self) -> StepRunner:
        return StepRunner(self._context())

    def _context(self) -> Context:
        """What the kinds' reads and steps use: this converger's clients as they are now
        (tests swap some in)."""
        return Context(
            settings=self.settings,
            store=self.store,
            dns=self.dns,
            load_balancing=self.load_balancing,
            containers=self.containers,
            images=self.images,
            builds=self.builds,
            put=self._put,
        )

    def _put(self, env: Environment, releases: Sequence[tuple[str, int]] = ()) -> Environment:
        def attempt(tried: int) -> Environment:
            if not tried:
                return self._write(env, releases)
            # A webhook changed the desired state meanwhile: keep its desired fields and
            # this run's progress; the worker converges again for the newer event.
            latest = self.store.get(env.slug)
            if latest is None:
                raise StoreError(f"{env.slug}: the record is gone")
            if env.ordering > latest.ordering:
                # This run carries a newer event's desired state (written with its first
                # write, see desire_of): it wins over what the other writer kept.
                return self._write(replace(env, version=latest.version), releases)
            merged = replace(
                env,
                desired=latest.desired,
                desired_sha=latest.desired_sha,
                ordering=latest.ordering,
                pusher=latest.pusher,
                commit_url=latest.commit_url,
                triggered_at=latest.triggered_at,
                asleep=latest.asleep,
                version=latest.version,
            )
            return self._write(merged, releases)

        return retry_concurrent_updates(attempt, env.slug)

    def _write(self, env: Environment, releases: Sequence[tuple[str, int]]) -> Environment:
        return self.store.put_releasing(env, releases) if releases else self.store.put(env)
