"""The task definition: the family ``<app>-<slug>``, one revision per task spec.

Found by family (its latest ACTIVE revision, with tags); a revision carries the spec
fingerprint of what was rendered (``branchenv:spec``), so converge registers a new one
only when the rendered task definition changed. The record keeps the revision's ARN and
spec. A teardown deregisters every ACTIVE revision of the family; it reads their tags
first only when the record does not say converge registered them.
"""

from __future__ import annotations

from chalicelib.aws.ecs import TaskDefinition
from chalicelib.domain.environments import Environment
from chalicelib.domain.names import EnvironmentNames
from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import (
    OWNERSHIP_KEYS,
    SPEC_TAG,
    DeregisterTaskDefinitions,
    RegisterTaskDefinition,
    RetryLater,
    Target,
)
from chalicelib.engine.converge.progress import Progress


def run_register(
    ctx: Context, step: RegisterTaskDefinition, progress: Progress, target: Target
) -> None:
    assert target.task_definition is not None
    registered = ctx.containers.register_task_definition(target.task_definition)
    progress.task_definition_arn = registered.arn


def current(ctx: Context, progress: Progress, target: Target) -> str:
    """The ARN of the revision for the target's spec: this run's, or one an earlier,
    interrupted run registered (found again by family)."""
    if progress.task_definition_arn is None:
        found = ctx.containers.find_task_definition(target.names.task_family)
        if found is None or found.tags.get(SPEC_TAG) != target.spec:
            raise RetryLater("the task definition for this sha is not registered yet")
        progress.task_definition_arn = found.arn
    return progress.task_definition_arn


def run_deregister(
    ctx: Context, step: DeregisterTaskDefinitions, progress: Progress, target: Target
) -> None:
    ours = target.names.tags()
    owner = {key: ours[key] for key in OWNERSHIP_KEYS}
    ctx.containers.deregister_owned_task_definitions(step.family, owner, known=step.known)
    progress.task_definition_arn = None


def family_of(identifier: str) -> str:
    """A family from a revision's ARN (``…:task-definition/<family>:<n>``) or a family."""
    return identifier.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _deregister_leftover(identifier: str) -> DeregisterTaskDefinitions:
    return DeregisterTaskDefinitions(family_of(identifier))


def find(ctx: Context, names: EnvironmentNames) -> TaskDefinition | None:
    """The family's latest ACTIVE revision, with its tags (the spec fingerprint)."""
    return ctx.containers.find_task_definition(names.task_family)


def from_record(env: Environment, target: Target) -> TaskDefinition | None:
    """The revision as the record keeps it: its ARN and spec fingerprint."""
    if not (env.task_definition_arn and env.task_spec):
        return None
    names = target.names
    revision = int(env.task_definition_arn.rsplit(":", 1)[-1])
    tags = {**names.tags(), SPEC_TAG: env.task_spec}
    return TaskDefinition(env.task_definition_arn, names.task_family, revision, "", {}, tags)


def _recorded(env: Environment, host: str) -> str | None:
    return env.task_definition_arn


KIND = KindSpec(
    kind=ResourceKind.TASK_DEFINITION,
    steps=(RegisterTaskDefinition, DeregisterTaskDefinitions),
    leftover=_deregister_leftover,
    recorded=_recorded,
    comparable=family_of,
)
