"""The environment model and where it is stored.

An :class:`Environment` is one branch's record: what is desired (present at a sha, or
absent), what converge has made so far, and the status people see. Records are written
with optimistic concurrency: every write names the version it read, and a write that
lost a race raises :class:`ConcurrentUpdate` so the caller re-reads and tries again, by
the one policy every writer follows (:func:`retry_concurrent_updates`).

Two stores share one contract (tests/integration/test_store_contract.py): DynamoDB for
real use, in memory for unit tests. Besides records the store keeps listener-rule priority
claims, and says how many each listener holds (where a new environment has most room).
Neither ever deletes an environment record: a deleted environment is kept as history until
DynamoDB's TTL removes it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal, TypeVar

Desired = Literal["present", "absent"]
T = TypeVar("T")
# How many times a write that keeps losing races is tried in all. The writers of one record
# are few (the worker, one message of a branch at a time; the reaper; an operator's
# command), so a conflict means one of them has just written: re-reading and trying again
# at once wins unless the record is changing without pause, and then giving up leaves the
# change to the queue's redelivery or the next sweep.
CONCURRENT_UPDATE_ATTEMPTS = 8


class Status(StrEnum):
    """Where an environment is in its life; see DESIGN.md "States of an environment"."""

    PENDING = "pending"
    BUILDING = "building"
    DEPLOYING = "deploying"
    READY = "ready"
    SLEEPING = "sleeping"  # idle: scaled to zero, its rule forwards to the waker
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


LIVE_STATUSES = frozenset(
    {
        Status.PENDING,
        Status.BUILDING,
        Status.DEPLOYING,
        Status.READY,
        Status.SLEEPING,
        Status.FAILED,
        Status.DELETING,
    }
)
TRANSIENT_STATUSES = frozenset({Status.PENDING, Status.BUILDING, Status.DEPLOYING, Status.DELETING})


class StoreError(Exception):
    """The environment store could not be read or written."""


class ConcurrentUpdate(StoreError):
    """Someone else wrote the record since it was read; re-read and try again."""


def retry_concurrent_updates(
    attempt: Callable[[int], T], what: str, *, attempts: int = CONCURRENT_UPDATE_ATTEMPTS
) -> T:
    """Run ``attempt`` until it does not raise ConcurrentUpdate: the one retry policy of
    every record writer. Each attempt re-reads what it writes; it is told how many
    attempts came before it (0 the first time), so a writer whose first write needs no
    read can skip it. After ``attempts`` lost races, ConcurrentUpdate naming ``what``."""
    for tried in range(attempts):
        try:
            return attempt(tried)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"{what}: the record kept changing ({attempts} writes lost a race)")


@dataclass(frozen=True)
class Environment:
    """One branch's environment: desired state, progress, and what people see."""

    slug: str
    repository: str
    branch: str
    desired: Desired = "present"
    desired_sha: str | None = None
    ordering: float = 0.0
    status: Status = Status.PENDING
    reason: str | None = None
    log_url: str | None = None
    pusher: str | None = None
    commit_url: str | None = None
    generation: int = 1
    listener_arn: str | None = None
    priority: int | None = None
    target_group_arn: str | None = None
    rule_arn: str | None = None
    service_name: str | None = None
    task_definition_arn: str | None = None
    deployed_sha: str | None = None  # the commit that became ready and serves
    serving_health_check_path: str | None = None  # what that commit is health-checked at
    image_uri: str | None = None
    build_id: str | None = None
    # branchenv.yml's ttl and keep at the desired sha, as converge last read them (None: not
    # read yet), so the reaper's sweep needs no GitHub call per environment.
    ttl_hours: float | None = None
    kept: bool | None = None
    # branchenv.yml's sleep_after in minutes, read with ttl (None: not read, or the setting's;
    # 0: ``never``), and whether the environment is to sleep (the reaper found it idle) or
    # be awake (a request reached the waker, a push, the dashboard's wake).
    sleep_after_minutes: float | None = None
    asleep: bool = False
    slept_at: float | None = None  # when it went to sleep; None again once it is ready
    routed_to_waker: bool = False  # the rule forwards to the waker (converge's last word)
    # What AWS holds, as the last clean converge run left it (chalicelib/engine/converge/
    # recorded.py): ``known`` False means look in AWS (never written, or a run that changed
    # AWS stopped on an error).
    known: bool = False
    dns_target: str | None = None  # the load balancer the DNS alias points at
    health_check_path: str | None = None  # of the target group, as converge set it
    image_sha: str | None = None  # the commit whose image and branch tag converge verified
    task_spec: str | None = None  # the spec fingerprint of task_definition_arn
    # Every task definition revision converge registered or adopted (its tags say it is
    # this environment's), oldest first: a teardown from the record deregisters these
    # without describing them.
    task_definitions: tuple[str, ...] = ()
    # The container port the live service's load balancer maps (None: no live service known).
    service_port: int | None = None
    deployment_id: str | None = None  # the ECS deployment converge's last rollout started
    created_at: float = 0.0
    updated_at: float = 0.0
    triggered_at: float | None = None
    ready_at: float | None = None
    ready_seconds: tuple[float, ...] = ()  # push-to-ready times, oldest first, last ten
    spot_interruptions: int = 0
    last_spot_task: str | None = None  # the last interrupted task counted (counted once)
    expires_at: int | None = None
    notifications: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def short_sha(self) -> str | None:
        sha = self.desired_sha or self.deployed_sha
        return sha[:7] if sha else None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["ready_seconds"] = list(self.ready_seconds)
        data["task_definitions"] = list(self.task_definitions)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Environment:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = Status(values.get("status", "pending"))
        values["ready_seconds"] = tuple(values.get("ready_seconds", ()))
        values["task_definitions"] = tuple(values.get("task_definitions", ()))
        return cls(**values)

    def with_status(self, status: Status, *, reason: str | None = None, now: float) -> Environment:
        return replace(self, status=status, reason=reason, updated_at=now)


@dataclass(frozen=True)
class Snapshot:
    """The whole store at one moment: records (deleted ones included) and claims."""

    environments: tuple[Environment, ...]
    claims: tuple[tuple[str, int, str], ...]  # (listener_arn, priority, slug)


class EnvironmentStore(ABC):
    """Where environment records and listener-priority claims live."""

    @abstractmethod
    def get(self, slug: str) -> Environment | None:
        """The record for ``slug``, or None if there never was one (or TTL removed it)."""

    @abstractmethod
    def put(self, env: Environment) -> Environment:
        """Write ``env`` if the stored version is still ``env.version``; return it with the
        new version. Raise ConcurrentUpdate otherwise."""

    @abstractmethod
    def scan(self) -> Iterator[Environment]:
        """Every record, deleted ones included, paging through the whole store."""

    @abstractmethod
    def claim_priority(self, listener_arn: str, priority: int, slug: str) -> bool:
        """Claim ``priority`` on ``listener_arn`` for ``slug``; True if it is now (or
        already was) this slug's, False if another environment holds it."""

    @abstractmethod
    def release_priority(self, listener_arn: str, priority: int, slug: str) -> None:
        """Give the claim up, only if ``slug`` holds it; tolerate it being gone."""

    def put_claiming(
        self, env: Environment, listener_arn: str, priority: int
    ) -> Environment | None:
        """Claim ``priority`` on ``listener_arn`` for ``env.slug`` and write ``env`` (which
        names the claim) as one change: None, with nothing written, if another environment
        holds the priority; ConcurrentUpdate, with nothing claimed, if ``env`` is stale.
        This fallback claims first (a claim the record does not name yet is found again by
        the same slug); a store with transactions does both at once."""
        if not self.claim_priority(listener_arn, priority, env.slug):
            return None
        return self.put(env)

    def put_releasing(self, env: Environment, claims: Sequence[tuple[str, int]]) -> Environment:
        """Give up ``claims`` (each only if ``env.slug`` holds it) and write ``env``, which
        no longer names them, as one change. This fallback releases first: a record that
        still names a released claim releases it again, harmlessly."""
        for listener_arn, priority in claims:
            self.release_priority(listener_arn, priority, env.slug)
        return self.put(env)

    @abstractmethod
    def priority_claims(self) -> Iterator[tuple[str, int, str]]:
        """Every claim as (listener_arn, priority, slug)."""

    @abstractmethod
    def occupancy(self, listener_arns: Sequence[str]) -> dict[str, int]:
        """How many priorities are claimed on each listener (how many rules branchenv holds
        there), in one read."""

    def snapshot(self) -> Snapshot:
        """Every record and every claim (the reaper's view), read as cheaply as the store
        allows."""
        return Snapshot(tuple(self.scan()), tuple(self.priority_claims()))

    def live(self) -> list[Environment]:
        return sorted((e for e in self.scan() if e.is_live), key=lambda e: e.slug)


class InMemoryEnvironmentStore(EnvironmentStore):
    """The same contract as the DynamoDB store, in a dict; for tests and dry runs."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._claims: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def get(self, slug: str) -> Environment | None:
        with self._lock:
            data = self._records.get(slug)
        return Environment.from_json(json.loads(json.dumps(data))) if data else None

    def put(self, env: Environment) -> Environment:
        with self._lock:
            return self._put_locked(env)

    def put_claiming(
        self, env: Environment, listener_arn: str, priority: int
    ) -> Environment | None:
        with self._lock:
            holder = self._claims.get((listener_arn, priority), env.slug)
            if holder != env.slug:
                return None
            written = self._put_locked(env)
            self._claims[(listener_arn, priority)] = env.slug
            return written

    def put_releasing(self, env: Environment, claims: Sequence[tuple[str, int]]) -> Environment:
        with self._lock:
            written = self._put_locked(env)
            for key in claims:
                if self._claims.get(key) == env.slug:
                    del self._claims[key]
            return written

    def _put_locked(self, env: Environment) -> Environment:
        stored = self._records.get(env.slug)
        if (stored["version"] if stored else 0) != env.version:
            raise ConcurrentUpdate(f"{env.slug}: version {env.version} is stale")
        written = replace(env, version=env.version + 1)
        self._records[env.slug] = json.loads(json.dumps(written.to_json()))
        return written

    def scan(self) -> Iterator[Environment]:
        with self._lock:
            items = list(self._records.values())
        for data in items:
            yield Environment.from_json(json.loads(json.dumps(data)))

    def claim_priority(self, listener_arn: str, priority: int, slug: str) -> bool:
        with self._lock:
            holder = self._claims.setdefault((listener_arn, priority), slug)
            return holder == slug

    def release_priority(self, listener_arn: str, priority: int, slug: str) -> None:
        with self._lock:
            if self._claims.get((listener_arn, priority)) == slug:
                del self._claims[(listener_arn, priority)]

    def priority_claims(self) -> Iterator[tuple[str, int, str]]:
        with self._lock:
            claims = list(self._claims.items())
        for (listener_arn, priority), slug in claims:
            yield listener_arn, priority, slug

    def occupancy(self, listener_arns: Sequence[str]) -> dict[str, int]:
        with self._lock:
            held = [listener for listener, _ in self._claims]
        return {arn: held.count(arn) for arn in listener_arns}
