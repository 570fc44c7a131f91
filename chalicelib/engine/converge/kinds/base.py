"""What every resource kind module declares, and what its step runners work with.

A resource kind module (``dns``, ``priority``, ``target_group``, ``rule``, ``images``,
``task_definition``, ``service``) holds everything converge knows about one kind of
per-environment resource: how it is found by name and tag, what the environment's record
keeps about it, the runners of its create/update/delete steps, and how a leftover of its
kind (found by the leak audit, tagged for an environment) is removed: ``find`` reads it
from AWS by name and tag, ``from_record`` rebuilds it from the record (observation from
the record, chalicelib/engine/converge/recorded.py), ``run_*`` are its step runners. What
the registry, the reaper and the planner's leftover removal need is one :class:`KindSpec`;
the registry (``kinds/__init__.py``) lists them in teardown order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain.environments import Environment, EnvironmentStore
from chalicelib.domain.resources import ResourceKind
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.model import AnyStep, Step
from chalicelib.engine.converge.progress import Progress

if TYPE_CHECKING:
    from chalicelib.aws.codebuild import Builds
    from chalicelib.aws.ecr import Images
    from chalicelib.aws.ecs import Containers
    from chalicelib.aws.elbv2 import LoadBalancing
    from chalicelib.aws.route53 import Dns


@dataclass(frozen=True)
class Context:
    """The gateways and settings a step runner uses, and the converger's record write
    (``put``: merged with a concurrent writer's change, see ``Converger._put``)."""

    settings: Settings
    store: EnvironmentStore
    dns: Dns
    load_balancing: LoadBalancing
    containers: Containers
    images: Images
    builds: Builds | None
    put: Callable[[Environment], Environment]

    def persist(self, progress: Progress, **changes: Any) -> None:
        """Record ``changes`` at once: what an interrupted run must find again."""
        progress.env = self.put(replace(progress.env, **changes))
        progress.unsaved = False


def as_is(identifier: str) -> str:
    return identifier


def nothing_recorded(env: Environment, host: str) -> str | None:
    return None


@dataclass(frozen=True)
class KindSpec:
    """One resource kind, as converge, the reaper and the leak audit use it.

    - ``steps``: the step types that make, change or remove it (each has its runner in
      the kind's module, dispatched by the executor, chalicelib/engine/converge/runners.py);
    - ``recorded``: the identifier the environment's record keeps of it (None: the record
      keeps none); through ``comparable`` it equals the leak audit's identifier of the
      same resource, so the reaper tells a recorded resource that is gone (drift) from one
      that is there;
    - ``leftover``: the step that removes a leftover the leak audit found, by its
      identifier (the audit's ``ManagedResource.identifier``).
    """

    kind: ResourceKind
    steps: tuple[type[Step], ...]
    leftover: Callable[[str], AnyStep]
    recorded: Callable[[Environment, str], str | None] = nothing_recorded
    comparable: Callable[[str], str] = as_is
