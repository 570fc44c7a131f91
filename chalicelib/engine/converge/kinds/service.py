"""The ECS service: ``<app>-<slug>[-<generation>]`` running the branch's task definition.

Found by the name the record gives (or the generation's name); ours by its tags. The
record keeps its name, generation, container port and the id of the rollout converge
started last (``deployment_id``), which ECS's completed event is matched against.
A re-created branch whose old service still drains gets the next generation's name.
Deleted with ``force`` (ECS stops its tasks itself), right after its rule.
"""

from __future__ import annotations

from chalicelib.aws.ecs import Service
from chalicelib.aws.errors import Conflict
from chalicelib.domain.environments import Environment
from chalicelib.domain.names import EnvironmentNames
from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds import task_definition
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import (
    CreateService,
    DeleteService,
    RetryLater,
    Target,
    UpdateService,
)
from chalicelib.engine.converge.progress import Progress
from chalicelib.engine.taskdef import render_service


def run_create(ctx: Context, step: CreateService, progress: Progress, target: Target) -> None:
    names = target.names
    name = names.service(step.generation)
    progress.service_name = name
    if step.generation != progress.env.generation:
        # A re-created branch's next generation, a name the record does not lead to:
        # recorded before the create call, so an interrupted run looks for this name.
        # (Within a generation a repeated create is safe: ECS answers a CreateService
        # identical to an existing service with that service.)
        ctx.persist(progress, generation=step.generation, service_name=name)
    td_arn = task_definition.current(ctx, progress, target)
    assert progress.target_group_arn is not None
    assert target.context is not None
    request = render_service(
        target.context,
        service_name=name,
        task_definition_arn=td_arn,
        target_group_arn=progress.target_group_arn,
    )
    try:
        created = ctx.containers.create_service(request)
    except Conflict as exc:
        # The new rule has not reached ECS yet, or the old service of this name still
        # drains: both pass within a short while.
        raise RetryLater(f"ECS cannot create {name} yet: {exc}") from exc
    progress.deployment_id = created.primary_deployment_id


def run_update(ctx: Context, step: UpdateService, progress: Progress, target: Target) -> None:
    td_arn = task_definition.current(ctx, progress, target)
    balancers = None
    if step.container_port is not None and progress.target_group_arn is not None:
        balancers = [
            {
                "targetGroupArn": progress.target_group_arn,
                "containerName": target.names.container,
                "containerPort": step.container_port,
            }
        ]
    updated = ctx.containers.update_service(
        step.name,
        task_definition_arn=td_arn,
        desired_count=target.desired_count if step.desired_count is None else step.desired_count,
        load_balancers=balancers,
    )
    progress.service_name = step.name
    progress.deployment_id = updated.primary_deployment_id


def run_delete(ctx: Context, step: DeleteService, progress: Progress, target: Target) -> None:
    ctx.containers.delete_service(step.name)


def name_of(identifier: str) -> str:
    """A service's name from its ARN (``…:service/<cluster>/<name>``) or its name."""
    return identifier.rsplit("/", 1)[-1]


def _delete_leftover(identifier: str) -> DeleteService:
    return DeleteService(name_of(identifier))


def find(ctx: Context, env: Environment, names: EnvironmentNames) -> Service | None:
    """The service by the name the record gives, else its generation's name."""
    return ctx.containers.find_service(env.service_name or names.service(env.generation))


def from_record(env: Environment, target: Target) -> Service:
    """The service as the record has it: ACTIVE, this environment's, running the recorded
    task definition at the desired count, its last rollout completed only if a signal
    said so (chalicelib/engine/converge/status.py, ``completes_recorded_rollout``)."""
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


def _recorded(env: Environment, host: str) -> str | None:
    return env.service_name


KIND = KindSpec(
    kind=ResourceKind.SERVICE,
    steps=(CreateService, UpdateService, DeleteService),
    leftover=_delete_leftover,
    recorded=_recorded,
    comparable=name_of,
)
