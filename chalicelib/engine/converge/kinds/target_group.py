"""The target group: the ELB target group a branch's rule forwards to.

Found by its name (``names.target_group``) and, in the leak audit, by branchenv's tags
through the Resource Groups Tagging API; the record keeps its ARN and health check path.
Deleted after the service (ELB refuses to delete one a rule still uses: ResourceInUse).
"""

from __future__ import annotations

from chalicelib.aws.elbv2 import TargetGroup
from chalicelib.aws.errors import Conflict
from chalicelib.domain.environments import Environment
from chalicelib.domain.names import EnvironmentNames
from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import (
    AwaitHealthyTarget,
    CreateTargetGroup,
    DeleteTargetGroup,
    RetryLater,
    SetHealthCheckPath,
    Target,
)
from chalicelib.engine.converge.progress import Progress


def run_create(ctx: Context, step: CreateTargetGroup, progress: Progress, target: Target) -> None:
    group = ctx.load_balancing.create_target_group(
        step.name,
        vpc_id=ctx.settings.vpc_id,
        port=target.container_port,
        health_check_path=target.health_check_path,
        tags=target.names.tags(),
    )
    progress.target_group_arn = group.arn


def run_set_health_check_path(
    ctx: Context, step: SetHealthCheckPath, progress: Progress, target: Target
) -> None:
    ctx.load_balancing.set_health_check_path(step.target_group_arn, step.path)


def run_await_healthy_target(
    ctx: Context, step: AwaitHealthyTarget, progress: Progress, target: Target
) -> None:
    arn = progress.target_group_arn
    if arn is None or ctx.load_balancing.healthy_targets(arn) < 1:
        raise RetryLater(f"{target.names.slug}: deployment done, no healthy target yet")


def run_delete(ctx: Context, step: DeleteTargetGroup, progress: Progress, target: Target) -> None:
    try:
        ctx.load_balancing.delete_target_group(step.arn)
    except Conflict as exc:
        raise RetryLater(f"target group still in use: {exc}") from exc
    progress.target_group_arn = None


def find(ctx: Context, names: EnvironmentNames) -> TargetGroup | None:
    """The target group by its name, with its tags and health check path."""
    return ctx.load_balancing.find_target_group(names.target_group)


def from_record(env: Environment, target: Target) -> TargetGroup | None:
    """The target group as the record keeps it: its ARN and health check path."""
    if not env.target_group_arn:
        return None
    names = target.names
    return TargetGroup(
        env.target_group_arn, names.target_group, names.tags(), env.health_check_path
    )


def _recorded(env: Environment, host: str) -> str | None:
    return env.target_group_arn


KIND = KindSpec(
    kind=ResourceKind.TARGET_GROUP,
    steps=(CreateTargetGroup, SetHealthCheckPath, AwaitHealthyTarget, DeleteTargetGroup),
    leftover=DeleteTargetGroup,
    recorded=_recorded,
)
