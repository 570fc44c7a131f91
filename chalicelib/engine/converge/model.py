"""The vocabulary of converge: what it is told, sees, aims at and does, all frozen.

:class:`Observed` (what AWS holds),
:class:`Target` (the constants converge aims at), one :class:`Step` dataclass per AWS
change, and the :class:`Plan` they make up; plus the tags that mark what branchenv owns
and the exceptions a converge run raises to wait or to give up for lack of room.
:class:`~chalicelib.domain.messages.Signal` (what an AWS event said) is the queue's
vocabulary; it is re-exported here for the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from chalicelib.aws.codebuild import Build
from chalicelib.aws.ecr import Image
from chalicelib.aws.ecs import Service, TaskDefinition
from chalicelib.aws.elbv2 import Rule, TargetGroup
from chalicelib.aws.route53 import AliasRecord
from chalicelib.domain.environments import Status
from chalicelib.domain.messages import Signal as Signal
from chalicelib.domain.names import EnvironmentNames
from chalicelib.domain.settings import Listener
from chalicelib.engine.taskdef import RenderContext

SPEC_TAG = "branchenv:spec"
SHA_TAG = "branchenv:sha"
OWNERSHIP_KEYS = ("branchenv:managed", "branchenv:app", "branchenv:env")


class RetryLater(Exception):
    """Converge is waiting on AWS (a target to turn healthy, a rule to let go of a target
    group, a new rule to reach ECS); the worker makes the queue message visible again
    after a short, growing backoff (chalicelib.handlers.worker)."""


class NoRoom(Exception):
    """Every load balancer of the pool holds as many rules or target groups as ELB allows."""


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
    # Built from the environment's record (chalicelib/engine/converge/recorded.py) rather
    # than read from AWS: what converge made is taken as it recorded it.
    recorded: bool = False


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
    ttl_hours: float | None = None  # branchenv.yml's ttl at the sha (None: the setting's)
    kept: bool = False  # branchenv.yml's keep names the branch
    sleep_after_minutes: float | None = None  # branchenv.yml's (0: never; None: the setting's)

    @property
    def waker_target_group_arn(self) -> str | None:
        """Where the environment's rule forwards while it sleeps (None: it never sleeps)."""
        return self.listener.waker_target_group_arn


# ----------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """One AWS change (or, with ``changes_aws`` False, one check of it). ``describe`` is
    what a dry run prints."""

    changes_aws: ClassVar[bool] = True

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


@dataclass(frozen=True)
class UpsertDns(Step):
    host: str
    alb_dns_name: str
    alb_zone_id: str
    create: bool = False  # nothing was at the host: a CREATE, which Route53 refuses if any is


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
    desired_count: int | None = None  # set to scale (0: to sleep); None: the target's count


@dataclass(frozen=True)
class RouteToWaker(Step):
    """The environment goes to sleep: its rule forwards to the load balancer's waker (weight
    1) and keeps its own target group at weight 0, so ELB keeps health-checking it and the
    service keeps a target group on a rule (ELB guide, "Listener rules": forward actions with
    weighted target groups, weight 0 to 999; every target group type, Lambda included)."""

    rule_arn: str
    waker_target_group_arn: str
    target_group_arn: str


@dataclass(frozen=True)
class RouteToService(Step):
    """The environment is awake and a target is healthy: its rule forwards to its own target
    group alone again."""

    rule_arn: str
    target_group_arn: str


@dataclass(frozen=True)
class AwaitHealthyTarget(Step):
    changes_aws: ClassVar[bool] = False


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
    """Deleted with ``force``: ECS stops its tasks itself, no scale-down call first (ECS
    API reference, DeleteService: ``force`` deletes a service not scaled down to zero)."""

    name: str


@dataclass(frozen=True)
class DeleteTargetGroup(Step):
    arn: str


@dataclass(frozen=True)
class DeregisterTaskDefinitions(Step):
    family: str
    # The revisions the record says converge registered: deregistered without reading
    # their tags first. Any other ACTIVE revision of the family is deregistered only if
    # its tags say it is this environment's (one made by hand there stays).
    known: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoveImageTags(Step):
    """Untag in one call; an image goes once its last tag does."""

    tags: tuple[str, ...]


@dataclass(frozen=True)
class ReleasePriority(Step):
    listener_arn: str
    priority: int


# Every step type: the executor's match over this union is checked complete by mypy
# (chalicelib/engine/converge/runners.py, StepRunner.execute), and each belongs to one
# resource kind (chalicelib/engine/converge/kinds/).
AnyStep = (
    UpsertDns
    | ClaimPriority
    | CreateTargetGroup
    | SetHealthCheckPath
    | CreateRule
    | StopBuild
    | StartBuild
    | RetagImage
    | TagBranchImage
    | RegisterTaskDefinition
    | CreateService
    | UpdateService
    | RouteToWaker
    | RouteToService
    | AwaitHealthyTarget
    | DeleteDns
    | DeleteDnsByHost
    | DeleteRule
    | DeleteService
    | DeleteTargetGroup
    | DeregisterTaskDefinitions
    | RemoveImageTags
    | ReleasePriority
)


@dataclass(frozen=True)
class Plan:
    """The steps to run, then the status the environment has once they have run."""

    steps: tuple[AnyStep, ...]
    status: Status
    reason: str | None = None
    log_url: str | None = None
    # What the environment shows while a step of this plan waits on AWS (RetryLater), the
    # steps before it done: a wake shows ``deploying`` until its target is healthy. None:
    # the record keeps its status while it waits.
    waiting: Status | None = None
    waiting_reason: str | None = None

    def describe(self) -> str:
        lines = [step.describe() for step in self.steps] or ["(nothing to change)"]
        lines.append(f"→ {self.status.value}" + (f": {self.reason}" if self.reason else ""))
        return "\n".join(lines)


def is_ours(tags: dict[str, str], ours: dict[str, str]) -> bool:
    """Whether ``tags`` carry this environment's ownership tags (``ours``)."""
    return all(tags.get(key) == ours[key] for key in OWNERSHIP_KEYS)
