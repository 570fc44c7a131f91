"""The executor: each planned :class:`~chalicelib.engine.converge.model.Step` to its runner.

:class:`StepRunner` executes one step at a time for the
:class:`~chalicelib.engine.converge.converger.Converger`. The runners themselves live with
their resource kind (chalicelib/engine/converge/kinds/); this module is the typed table
from step type to runner, a match that mypy proves complete.
"""

from __future__ import annotations

from typing import assert_never

from chalicelib.engine.converge.kinds import (
    Context,
    dns,
    images,
    priority,
    rule,
    service,
    target_group,
    task_definition,
)
from chalicelib.engine.converge.model import (
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
    RegisterTaskDefinition,
    ReleasePriority,
    RemoveImageTags,
    RetagImage,
    RouteToService,
    RouteToWaker,
    SetHealthCheckPath,
    StartBuild,
    StopBuild,
    TagBranchImage,
    Target,
    UpdateService,
    UpsertDns,
)
from chalicelib.engine.converge.progress import Progress


class StepRunner:
    """Runs the steps of a plan against AWS, one at a time.

    Every runner looks before it acts and tolerates "already done" / "already gone";
    what it learns goes into the run's :class:`Progress`, and what an interrupted run
    must find again is recorded at once through ``put`` (the converger's store write).
    """

    def __init__(self, context: Context) -> None:
        self.context = context

    def execute(self, step: AnyStep, progress: Progress, target: Target) -> None:
        """Run one step: a match over every step type, which mypy proves complete
        (``assert_never``), so a new step type without its runner does not type-check."""
        ctx = self.context
        match step:
            case UpsertDns():
                dns.run_upsert(ctx, step, progress, target)
            case DeleteDns():
                dns.run_delete(ctx, step, progress, target)
            case DeleteDnsByHost():
                dns.run_delete_by_host(ctx, step, progress, target)
            case ClaimPriority():
                priority.run_claim(ctx, step, progress, target)
            case ReleasePriority():
                priority.run_release(ctx, step, progress, target)
            case CreateTargetGroup():
                target_group.run_create(ctx, step, progress, target)
            case SetHealthCheckPath():
                target_group.run_set_health_check_path(ctx, step, progress, target)
            case AwaitHealthyTarget():
                target_group.run_await_healthy_target(ctx, step, progress, target)
            case DeleteTargetGroup():
                target_group.run_delete(ctx, step, progress, target)
            case CreateRule():
                rule.run_create(ctx, step, progress, target)
            case RouteToWaker():
                rule.run_route_to_waker(ctx, step, progress, target)
            case RouteToService():
                rule.run_route_to_service(ctx, step, progress, target)
            case DeleteRule():
                rule.run_delete(ctx, step, progress, target)
            case StopBuild():
                images.run_stop_build(ctx, step, progress, target)
            case StartBuild():
                images.run_start_build(ctx, step, progress, target)
            case RetagImage():
                images.run_retag(ctx, step, progress, target)
            case TagBranchImage():
                images.run_tag_branch(ctx, step, progress, target)
            case RemoveImageTags():
                images.run_remove_tags(ctx, step, progress, target)
            case RegisterTaskDefinition():
                task_definition.run_register(ctx, step, progress, target)
            case DeregisterTaskDefinitions():
                task_definition.run_deregister(ctx, step, progress, target)
            case CreateService():
                service.run_create(ctx, step, progress, target)
            case UpdateService():
                service.run_update(ctx, step, progress, target)
            case DeleteService():
                service.run_delete(ctx, step, progress, target)
            case _:
                assert_never(step)
