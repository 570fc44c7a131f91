"""The scheduled sweep: every environment converges to its branch's truth, nothing leaks.

Run by the ``@app.schedule`` handler and by ``branchenv reap``. It finds what webhooks
missed and hands it to converge (the one way AWS changes):
- a branch (or repository) gone on GitHub → absent; a branch whose head moved → that sha;
- no push for longer than the TTL (branchenv.yml ``ttl``, else the setting), unless the
  branch is kept → absent, with a reason saying how to bring it back;
- stuck in a transient state past the limit → failed with a reason, then converged;
- ready with no request and no deploy for longer than ``sleep_after`` → asleep, converged
  (scaled to zero behind the waker: chalicelib/handlers/idle.py, engine/converge/sleep.py);
- resources tagged as ours whose environment is deleted or unknown → removed;
- a live environment whose recorded resources the sweep did not find (a rule or service
  deleted by hand, say) → converged with a full observation, which puts them back: event
  converges trust the record, so the sweep is where drift made outside branchenv is found;
- dead letters that arrived in the work queue's dead-letter queue since the last alert →
  one Slack alert saying how many are new and wait, naming the environments; a dead
  letter already announced is not announced again (chalicelib.handlers.deadletter).
GitHub is asked once per repository (one paginated listing of branches), never once per
environment: a branch's ttl and keep are those converge read from its branchenv.yml and
recorded (the file is read here only for a record written before converge kept them).
The store is read once (a snapshot of records and claims), and the resources through the
inventory, which confirms only what might be removed: a sweep with nothing to do costs
about the same few dozen AWS calls whether branchenv holds ten environments or a thousand
(bench/reaper_1000.py). A dry run reports the same and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from chalicelib.aws.errors import AwsError
from chalicelib.aws.inventory import Inventory
from chalicelib.domain.desired import desire_sleep
from chalicelib.domain.environments import (
    TRANSIENT_STATUSES,
    ConcurrentUpdate,
    Environment,
    EnvironmentStore,
    Status,
    retry_concurrent_updates,
)
from chalicelib.domain.messages import ConvergeRequest, Queue
from chalicelib.domain.names import names_of
from chalicelib.domain.resources import ManagedResource, ResourceKind
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge import RetryLater
from chalicelib.engine.converge.kinds import REGISTRY, spec_of
from chalicelib.engine.repoconfig import RepoConfig
from chalicelib.handlers.deadletter import DeadLetters
from chalicelib.handlers.idle import RequestCounts, can_sleep, idle_environments

log = logging.getLogger(__name__)


class BranchLister(Protocol):
    """GitHub: every branch of a repository with its head sha."""

    def list_branches(self, repository: str) -> dict[str, str]: ...


class Converging(Protocol):
    """What the sweep needs of converge (chalicelib/engine/converge: the Converger)."""

    def converge(
        self,
        slug: str,
        *,
        leftovers: Sequence[ManagedResource] = (),
        observe_all: bool = False,
    ) -> object: ...


class RepoConfigReading(Protocol):
    """Where the sweep reads a branch's branchenv.yml (the RepoConfigSource that converge
    reads it through, chalicelib/engine/converge/repo_configs.py)."""

    def repo_config(self, env: Environment) -> tuple[RepoConfig, str | None]: ...


class RepositoryGone(Exception):
    """GitHub says the repository does not exist (or no longer can be read)."""


@dataclass
class ReapReport:
    """What one sweep did (or, in a dry run, would do)."""

    dry_run: bool
    branch_gone: list[str] = field(default_factory=list)
    head_moved: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)  # live, but AWS lacks what it recorded
    slept: list[str] = field(default_factory=list)  # idle past sleep_after: scaled to zero
    dead_letters: list[str] = field(default_factory=list)  # environments SQS gave up on
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {key: len(value) for key, value in asdict(self).items() if isinstance(value, list)}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}


@dataclass(frozen=True)
class _Verdict:
    kind: str  # branch_gone | head_moved | expired | stuck
    reason: str | None = None
    sha: str | None = None


class Reaper:
    """One sweep over every environment and every resource tagged as this installation's."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: EnvironmentStore,
        converger: Converging,
        repo_configs: RepoConfigReading,
        inventory: Inventory,
        github: BranchLister | None,
        clock: Callable[[], float] = time.time,
        dead_letters: DeadLetters | None = None,
        queue: Queue | None = None,
        metrics: RequestCounts | None = None,
    ) -> None:
        self.metrics = metrics  # CloudWatch's request counts (None: nothing sleeps)
        self.dead_letters = dead_letters
        self.queue = queue  # where a converge that must wait goes on, with its backoff
        self.settings = settings
        self.store = store
        self.converger = converger
        self.repo_configs = repo_configs
        self.inventory = inventory
        self.github = github
        self.clock = clock

    def run(self, *, dry_run: bool = False) -> ReapReport:
        report = ReapReport(dry_run=dry_run)
        now = self.clock()
        snapshot = self.store.snapshot()
        envs = list(snapshot.environments)
        live = [e for e in envs if e.desired == "present" and e.status != Status.DELETED]
        branches = self._branches({e.repository for e in live}, report)
        resting: list[Environment] = []
        for env in live:
            verdict = self._verdict(env, branches, now, report)
            if verdict is not None:
                getattr(report, verdict.kind).append(env.slug)
                if not dry_run:
                    self._act(env, verdict, report)
            else:
                resting.append(env)
        self._sleep_idle(resting, now, report, dry_run)
        for env in envs:
            if env.desired == "absent" and env.status == Status.DELETING and not dry_run:
                self._converge(env.slug, report)  # a teardown that stopped half-way
        self._orphans(envs, snapshot.claims, report, dry_run)
        if self.dead_letters is not None:
            report.dead_letters = self.dead_letters.check(dry_run=dry_run)
        log.info("reaper%s: %s", " (dry run)" if dry_run else "", report.counts())
        return report

    # -- the truth about branches

    def _branches(
        self, repositories: Iterable[str], report: ReapReport
    ) -> dict[str, dict[str, str] | None]:
        """Branches per repository; None for a repository that is gone. A repository
        GitHub could not answer for is left out, so nothing is removed on a guess."""
        found: dict[str, dict[str, str] | None] = {}
        if self.github is None:
            return found
        for repository in sorted(repositories):
            try:
                found[repository] = self.github.list_branches(repository)
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    found[repository] = None
                else:
                    report.errors.append(f"{repository}: could not list branches ({exc})")
        return found

    def _verdict(
        self,
        env: Environment,
        branches: dict[str, dict[str, str] | None],
        now: float,
        report: ReapReport,
    ) -> _Verdict | None:
        if env.repository in branches:
            listing = branches[env.repository]
            if listing is None:
                return _Verdict("branch_gone", f"repository {env.repository} no longer exists")
            if env.branch not in listing:
                return _Verdict("branch_gone", f"branch {env.branch} no longer exists on GitHub")
            head = listing[env.branch]
            if env.desired_sha is not None and head != env.desired_sha:
                return _Verdict("head_moved", sha=head)
        expired = self._expired(env, now, report)
        if expired:
            return _Verdict("expired", expired)
        limit = self.settings.stuck_minutes * 60
        if env.status in TRANSIENT_STATUSES and now - env.updated_at > limit:
            minutes = int((now - env.updated_at) // 60)
            return _Verdict(
                "stuck",
                f"stuck in {env.status.value} for {minutes} minutes with no progress reported "
                "by AWS; check the build or service logs, then push again to retry",
            )
        return None

    def _expired(self, env: Environment, now: float, report: ReapReport) -> str | None:
        last_push = env.triggered_at or env.created_at
        if last_push <= 0:
            return None
        kept, file_ttl = env.kept, env.ttl_hours
        if kept is None:  # a record converge has not written ttl and keep into yet
            try:
                config, _ = self.repo_configs.repo_config(env)
            except Exception as exc:
                report.errors.append(f"{env.slug}: could not read branchenv.yml ({exc})")
                return None
            kept, file_ttl = config.is_kept(env.branch), config.ttl_hours
        if kept:
            return None
        ttl_hours = file_ttl or self.settings.ttl_hours
        idle_hours = (now - last_push) / 3600
        if idle_hours <= ttl_hours:
            return None
        return (
            f"removed after {_duration(idle_hours)} without a push (limit {_duration(ttl_hours)});"
            " push to the branch again to bring it back"
        )

    # -- acting, always through converge

    def _act(self, env: Environment, verdict: _Verdict, report: ReapReport) -> None:
        if verdict.kind in ("branch_gone", "expired"):
            changes: dict[str, Any] = {"desired": "absent", "reason": verdict.reason}
        elif verdict.kind == "head_moved":
            changes = {
                "desired_sha": verdict.sha,
                "status": Status.PENDING,
                "reason": None,
                "triggered_at": self.clock(),
            }
        elif env.status == Status.DELETING:
            changes = {}
        else:
            changes = {"status": Status.FAILED, "reason": verdict.reason}
        if changes and not self._update(env.slug, changes, report):
            return
        self._converge(env.slug, report)

    def _sleep_idle(
        self, envs: list[Environment], now: float, report: ReapReport, dry_run: bool
    ) -> None:
        """Put the idle ready previews to sleep; finish a sleep or a wake that stopped
        half-way (a lost wake request, a sweep cut off after marking one asleep)."""
        for env in envs:
            half_done = env.asleep != (env.status == Status.SLEEPING)
            if half_done and env.status in (Status.READY, Status.SLEEPING) and not dry_run:
                self._converge(env.slug, report, observe_all=False)
        if self.metrics is None:
            return
        try:
            sleepers = idle_environments(envs, self.settings, self.metrics, now=now)
        except AwsError as exc:
            report.errors.append(f"could not read request counts from CloudWatch ({exc})")
            return
        for sleeper in sleepers:
            report.slept.append(f"{sleeper.slug}: {sleeper.reason}")
            if dry_run:
                continue
            try:
                marked = desire_sleep(
                    self.store,
                    sleeper.slug,
                    asleep=True,
                    when=lambda env: can_sleep(env, self.settings),
                )
            except ConcurrentUpdate:
                report.errors.append(f"{sleeper.slug}: the record kept changing; not slept")
                continue
            if marked is not None:
                self._converge(sleeper.slug, report, observe_all=False)

    def _update(self, slug: str, changes: dict[str, Any], report: ReapReport) -> bool:
        def attempt(_: int) -> bool:
            current = self.store.get(slug)
            if current is None:
                return False
            self.store.put(replace(current, updated_at=self.clock(), **changes))
            return True

        try:
            return retry_concurrent_updates(attempt, slug)
        except ConcurrentUpdate:
            report.errors.append(f"{slug}: the record kept changing; left for the next sweep")
            return False

    def _converge(
        self,
        slug: str,
        report: ReapReport,
        leftovers: list[ManagedResource] | None = None,
        *,
        observe_all: bool = True,
    ) -> None:
        try:
            self.converger.converge(slug, leftovers=leftovers or (), observe_all=observe_all)
        except RetryLater as wait:
            if not self._hand_to_worker(slug, str(wait)):
                report.errors.append(f"{slug}: converge is waiting ({wait}); next sweep retries")
        except Exception as exc:
            report.errors.append(f"{slug}: converge did not finish ({exc}); next sweep retries")

    def _hand_to_worker(self, slug: str, reason: str) -> bool:
        """A converge that waits on AWS (a target group its deleted rule still holds, say)
        goes on in the worker, which retries after its own backoff: not 15 minutes later."""
        env = self.store.get(slug)
        if self.queue is None or env is None:
            return False
        names = names_of(env, self.settings.app_name, self.settings.preview_domain)
        request = ConvergeRequest(slug=slug, cause=f"reaper: {reason}")
        try:
            self.queue.send(request.to_message(), group_id=names.queue_group_id)
        except Exception as exc:
            log.warning("%s: could not hand the wait to the worker: %s", slug, exc)
            return False
        log.info("%s: waiting (%s); the worker goes on with it", slug, reason)
        return True

    def _orphans(
        self,
        envs: list[Environment],
        claims: Iterable[tuple[str, int, str]],
        report: ReapReport,
        dry_run: bool,
    ) -> None:
        wanted = {e.slug: e for e in envs if e.desired == "present" and e.status != Status.DELETED}
        by_env: dict[str, list[ManagedResource]] = defaultdict(list)

        def belongs_to_a_live_environment(resource: ManagedResource) -> bool:
            return resource.env in wanted  # not going to be removed: no need to confirm it

        found = self.inventory.managed(trust=belongs_to_a_live_environment, claims=claims)
        self._drift(wanted, found, report, dry_run)
        for resource in found:
            if resource.env is None:
                report.errors.append(f"{resource.kind} {resource.identifier} has no env tag")
            elif resource.kind == ResourceKind.PRIORITY_CLAIM and resource.env in wanted:
                self._stale_claim(wanted[resource.env], resource, report, dry_run)
            elif resource.env not in wanted:
                by_env[resource.env].append(resource)
        known = {e.slug for e in envs}
        for slug, resources in sorted(by_env.items()):
            report.orphans.extend(f"{r.kind} {r.identifier}" for r in resources)
            if dry_run:
                continue
            if slug not in known:
                self._tombstone(slug)
            self._converge(slug, report, resources)

    def _drift(
        self,
        wanted: dict[str, Environment],
        found: list[ManagedResource],
        report: ReapReport,
        dry_run: bool,
    ) -> None:
        """Converge, observing everything, each live environment whose record names a
        resource the sweep did not find."""
        held = {(r.kind, r.env, spec_of(r.kind).comparable(r.identifier)) for r in found}
        for slug, env in sorted(wanted.items()):
            host = names_of(env, self.settings.app_name, self.settings.preview_domain).host
            recorded = _recorded(env, host)
            missing = [kind for kind, ident in recorded if (kind, slug, ident) not in held]
            if not missing or not env.known or env.status in TRANSIENT_STATUSES:
                continue
            report.drifted.append(f"{slug}: {', '.join(missing)} not found")
            if not dry_run:
                self._converge(slug, report, observe_all=True)

    def _stale_claim(
        self, env: Environment, claim: ManagedResource, report: ReapReport, dry_run: bool
    ) -> None:
        listener_arn, _, priority = claim.identifier.rpartition("#")
        if (listener_arn, int(priority)) == (env.listener_arn, env.priority):
            return
        report.orphans.append(f"{claim.kind} {claim.identifier}")
        if not dry_run:
            self.store.release_priority(listener_arn, int(priority), env.slug)

    def _tombstone(self, slug: str) -> None:
        """A record for resources whose environment branchenv has no record of, so converge
        can remove them (their tags say which environment they belong to)."""
        now = self.clock()
        tombstone = Environment(
            slug=slug,
            repository="(unknown)",
            branch=slug,
            desired="absent",
            status=Status.DELETING,
            reason="resources left by an environment branchenv had no record of",
            created_at=now,
            updated_at=now,
            expires_at=int(now + self.settings.history_days * 86400),
        )
        with contextlib.suppress(ConcurrentUpdate):  # a record appeared: converge reads it
            self.store.put(tombstone)


def _recorded(env: Environment, host: str) -> list[tuple[ResourceKind, str]]:
    """(kind, identifier) of what the record says converge made, each identifier in the
    form its kind's ``comparable`` gives the leak audit's identifiers."""
    made = ((spec, spec.recorded(env, host)) for spec in REGISTRY)
    return [(spec.kind, spec.comparable(ident)) for spec, ident in made if ident]


def _duration(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    if hours >= 2:
        return f"{hours:.0f} hours"
    return f"{hours * 60:.0f} minutes"
