"""The event relay: plays the parts of AWS that moto does not, for the local stack.

moto stores what the worker asks for but never moves on by itself: no task starts, no
deployment completes, no CodeBuild build runs. The relay watches moto and does what AWS
would, then delivers the EventBridge event AWS would send to the same Chalice handler:

- ECS: when a managed service appears or gets a new task definition (a deployment
  starts), it sends "ECS Deployment State Change" SERVICE_DEPLOYMENT_IN_PROGRESS. With a
  :class:`~chalicelib.local.dataplane.DataPlane` (the local stack) the deployment's tasks
  really run and are registered in the service's target group, and
  SERVICE_DEPLOYMENT_COMPLETED is sent to ``ecs_deployment`` once the local load
  balancer's health checks find them healthy (the older tasks stopped first); a task that
  turns unhealthy fails the deployment as below. Without one, a stand-in target (a private
  IP in the VPC, on the container port) is registered and the deployment completes at
  once. A deployment whose task definition carries a ``COMMIT_SHA`` listed in
  ``ecs.fail_shas`` (``PUT /_local/faults``), or, without a data plane, whose container
  port the security groups keep the load balancer from (the strict layer's
  ``port_reachable``), is failed the way
  ECS's deployment circuit breaker with rollback fails it: no healthy target for it, the
  service back on the task definition of its last completed deployment, and
  SERVICE_DEPLOYMENT_FAILED then the rollback's IN_PROGRESS and COMPLETED; a service that
  never completed a deployment just fails. moto never moves a deployment's
  ``rolloutState`` on, so :meth:`EventRelay.install` puts a botocore hook on the app's ECS
  client that shows DescribeServices' ``deployments`` as ECS would: the primary
  IN_PROGRESS, COMPLETED or FAILED, and a rolled-back deployment still listed as FAILED;
  likewise BatchGetBuilds shows a build IN_PROGRESS until the relay finishes it, then its
  status (moto answers SUCCEEDED for every build as soon as it is asked).
- CodeBuild: when a build is started, after a short delay it puts an image manifest for the
  build's tags into ECR (sending "ECR Image Action" to ``ecr_push``) and sends "CodeBuild
  Build State Change" SUCCEEDED to ``codebuild_state``; a branch whose name ends in
  ``--fail-build`` gets FAILED instead, and a stopped build STOPPED.

Like bootstrap.py it stands in for AWS, so it calls boto3 itself, and only against the
moto server it is given: it must never be pointed at a real account.
"""

from __future__ import annotations

import copy
import heapq
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.local.builds import BuildRecorder
from chalicelib.local.dataplane import DataPlane
from chalicelib.local.eventbridge import (
    ECS_DEPLOYMENT_COMPLETED,
    ECS_DEPLOYMENT_FAILED,
    ECS_DEPLOYMENT_IN_PROGRESS,
    codebuild_state_event,
    ecr_push_event,
    ecs_deployment_event,
)
from chalicelib.local.shapes import (
    MANIFEST_MEDIA_TYPE,
    Deployment,
    deployment_view,
    image_tags,
    manifest,
    primary_deployment,
    show_build,
    stand_in_address,
)
from chalicelib.local.tasks import Task
from chalicelib.local.ticker import Ticker

__all__ = ["BuildRecorder", "EventRelay", "image_tags", "stand_in_address"]

log = logging.getLogger(__name__)

FAIL_BUILD_SUFFIX = "--fail-build"
MANAGED_TAG = "branchenv:managed"
APP_TAG = "branchenv:app"
DELIVERY_ATTEMPTS = 3
COMMIT_VARIABLE = "COMMIT_SHA"  # set in every container by chalicelib.engine.taskdef
# ECS's reason texts, from the ECS developer guide, "Amazon ECS service deployment state
# change events" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/
# ecs_service_deployment_events.html) and "How the Amazon ECS deployment circuit breaker
# detects failures" (rollback to the last deployment that completed).
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: task failed to start."
ROLLBACK_REASON = "ECS deployment circuit breaker: rolling back to deploymentId {}."

Deliver = Callable[[str, dict[str, Any]], bool]
# Which branch a build is for, from the variables the worker started it with (a build
# carries the slug, which no longer shows the branch's ``--fail-build`` suffix).
BranchOfBuild = Callable[[Mapping[str, str]], str | None]
# The commits whose deployments fail (the stand-ins' ecs.fail_shas), read at each deployment.
FailingShas = Callable[[], Collection[str]]
# Whether the security groups let the load balancer reach (target group ARN, port).
PortReachable = Callable[[str, int], bool]


@dataclass(order=True)
class _Build:
    due: float
    build_arn: str = field(compare=False)
    project: str = field(compare=False)
    source_version: str = field(compare=False)
    variables: dict[str, str] = field(compare=False)


class EventRelay:
    """Polls moto and emits the events ECS and CodeBuild would; one thread."""

    def __init__(
        self,
        clients: Any,
        deliver: Deliver,
        recorder: BuildRecorder,
        *,
        app_name: str,
        cluster: str,
        ecr_repository: str,
        region: str,
        build_seconds: float = 1.0,
        poll_seconds: float = 0.5,
        branch_of: BranchOfBuild | None = None,
        failing_shas: FailingShas | None = None,
        port_reachable: PortReachable | None = None,
        data_plane: DataPlane | None = None,
    ) -> None:
        self._ecs = clients.client("ecs")
        self._elbv2 = clients.client("elbv2")
        self._ecr = clients.client("ecr")
        self._deliver = deliver
        self._recorder = recorder
        self._app = app_name
        self._cluster = cluster
        self._ecr_repository = ecr_repository
        self._region = region
        self._build_seconds = build_seconds
        self._branch_of = branch_of
        self._failing_shas = failing_shas
        self._port_reachable = port_reachable
        self._data_plane = data_plane
        self._pending: dict[Deployment, list[Task]] = {}  # started, not yet healthy
        self._seen_deployments: set[Deployment] = set()
        self._completed: dict[str, Deployment] = {}  # service ARN → last completed
        self._commits: dict[str, str | None] = {}  # task definition ARN → its COMMIT_SHA
        # What DescribeServices shows of each service's deployments, as ECS would.
        self._views: dict[str, tuple[Deployment, list[dict[str, Any]]]] = {}
        self._views_lock = threading.Lock()
        self._build_states: dict[str, str] = {}  # build ARN → IN_PROGRESS, SUCCEEDED, ...
        self._builds: list[_Build] = []
        self._ticker = Ticker(
            "event relay",
            poll_seconds,
            self._collect_builds,
            self._finish_due_builds,
            self._watch_services,
        )
        self.emitted: list[dict[str, Any]] = []

    def install(self, clients: Any) -> None:
        """Show ECS's rolloutState in the DescribeServices answers of ``clients``' ECS
        client (the app's), which moto leaves as it was at creation."""
        clients.client("ecs").meta.events.register(
            "after-call.ecs.DescribeServices", self._show_deployments
        )
        clients.client("codebuild").meta.events.register(
            "after-call.codebuild.BatchGetBuilds", self._show_builds
        )

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    # --- CodeBuild ------------------------------------------------------------------------

    def _collect_builds(self) -> None:
        for arn, project, source, variables in self._recorder.take_started():
            with self._views_lock:
                self._build_states[arn] = "IN_PROGRESS"
            build = _Build(time.monotonic() + self._build_seconds, arn, project, source, variables)
            heapq.heappush(self._builds, build)

    def _finish_due_builds(self) -> None:
        while self._builds and self._builds[0].due <= time.monotonic():
            self._finish(heapq.heappop(self._builds))

    def _finish(self, build: _Build) -> None:
        if self._recorder.was_stopped(build.build_arn):
            status = "STOPPED"
        elif self._fails(build):
            status = "FAILED"
        else:
            status = "SUCCEEDED"
            self._push_image(build)
        with self._views_lock:
            self._build_states[build.build_arn] = status
        event = codebuild_state_event(
            build_arn=build.build_arn,
            project_name=build.project,
            status=status,
            source_version=build.source_version,
            environment_variables=[
                {"name": k, "type": "PLAINTEXT", "value": v} for k, v in build.variables.items()
            ],
            region=self._region,
        )
        log.info("relay: CodeBuild %s %s", build.source_version[:7], status)
        self._emit("codebuild_state", event)

    def _fails(self, build: _Build) -> bool:
        branch = self._branch_of(build.variables) if self._branch_of else None
        if branch is not None:
            return branch.endswith(FAIL_BUILD_SUFFIX)
        return any(value.endswith(FAIL_BUILD_SUFFIX) for value in build.variables.values())

    def _push_image(self, build: _Build) -> None:
        repository = build.variables.get("ECR_REPOSITORY") or self._ecr_repository
        body = manifest(build.source_version)
        for tag in image_tags(build.source_version, build.variables):
            answer = self._ecr.put_image(
                repositoryName=repository,
                imageManifest=body,
                imageManifestMediaType=MANIFEST_MEDIA_TYPE,
                imageTag=tag,
            )
            digest = str(answer["image"]["imageId"].get("imageDigest", ""))
            event = ecr_push_event(
                repository_name=repository, image_tag=tag, image_digest=digest, region=self._region
            )
            self._emit("ecr_push", event)

    # --- ECS --------------------------------------------------------------------------------

    def _watch_services(self) -> None:
        services = self._managed_services()
        if self._data_plane is not None:
            self._data_plane.reconcile(services, self._settled)
        for service in services:
            deployment = primary_deployment(service)
            if deployment in self._seen_deployments:
                continue
            self._seen_deployments.add(deployment)
            self._deploy(service, deployment)
        self._follow_pending({str(s["serviceArn"]) for s in services})

    def _settled(self, service: Mapping[str, Any]) -> bool:
        return self._completed.get(str(service["serviceArn"])) == primary_deployment(service)

    def _deploy(self, service: Mapping[str, Any], deployment: Deployment) -> None:
        self._show(deployment, "IN_PROGRESS")
        self._emit_deployment(deployment, ECS_DEPLOYMENT_IN_PROGRESS)
        failure = self._failure(service)
        if failure is None and self._data_plane is not None:
            for older in [d for d in self._pending if d.service_arn == deployment.service_arn]:
                self._data_plane.stop(self._pending.pop(older))  # superseded before healthy
            started = self._data_plane.start(service)
            if started is not None:
                self._pending[deployment] = started  # completes once its tasks are healthy
                return
            failure = "its task failed to start"
        if failure is None:
            self._start_stand_in_task(service)
            self._complete(deployment)
            return
        self._fail(deployment, failure)

    def _follow_pending(self, active: set[str]) -> None:
        """A deployment whose tasks all turned healthy completes (the service's older
        tasks stopped first, as ECS drains them); one with an unhealthy task fails."""
        plane = self._data_plane
        if plane is None:
            return
        for deployment, started in list(self._pending.items()):
            if deployment.service_arn not in active:  # deleted meanwhile: tasks stopped
                del self._pending[deployment]
                continue
            verdict = plane.verdict(started)
            if verdict is None:
                continue
            del self._pending[deployment]
            if verdict == "healthy":
                plane.keep_only(deployment.service_arn, started)
                self._complete(deployment)
            else:
                plane.stop(started)
                self._fail(deployment, "its task failed the load balancer's health checks")

    def _complete(self, deployment: Deployment) -> None:
        self._completed[deployment.service_arn] = deployment
        self._show(deployment, "COMPLETED")
        log.info("relay: ECS deployment of %s completed", deployment.service_arn.rsplit("/")[-1])
        self._emit_deployment(deployment, ECS_DEPLOYMENT_COMPLETED)

    def _fail(self, deployment: Deployment, failure: str) -> None:
        log.info("relay: ECS deployment of %s fails: %s", deployment.service_arn, failure)
        last = self._completed.get(deployment.service_arn)
        if last is None or last.task_definition == deployment.task_definition:
            self._show(deployment, "FAILED", CIRCUIT_BREAKER_REASON)
            self._emit_deployment(deployment, ECS_DEPLOYMENT_FAILED, CIRCUIT_BREAKER_REASON)
            return
        self._roll_back(deployment, last)

    def _roll_back(self, failed: Deployment, last: Deployment) -> None:
        """The circuit breaker's rollback: the service returns to the task definition of
        its last completed deployment, in a new deployment, while the tasks that deployment
        started keep serving (its stand-in target stays registered)."""
        answer = self._ecs.update_service(
            cluster=self._cluster,
            service=failed.service_arn,
            taskDefinition=last.task_definition,
            forceNewDeployment=True,
        )
        rollback = primary_deployment(answer["service"])
        self._seen_deployments.add(rollback)
        # The failed deployment stays listed, FAILED, beside the rollback (until it drains).
        failed_view = deployment_view(failed, "ACTIVE", "FAILED", CIRCUIT_BREAKER_REASON)
        self._show(rollback, "COMPLETED", also=[failed_view])
        self._emit_deployment(failed, ECS_DEPLOYMENT_FAILED, CIRCUIT_BREAKER_REASON)
        self._emit_deployment(
            rollback, ECS_DEPLOYMENT_IN_PROGRESS, ROLLBACK_REASON.format(last.deployment_id)
        )
        self._completed[failed.service_arn] = rollback
        log.info("relay: ECS rolled %s back to %s", failed.service_arn, last.task_definition)
        self._emit_deployment(rollback, ECS_DEPLOYMENT_COMPLETED)

    def _show(
        self,
        deployment: Deployment,
        state: str,
        reason: str | None = None,
        also: list[dict[str, Any]] | None = None,
    ) -> None:
        primary = deployment_view(deployment, "PRIMARY", state, reason)
        with self._views_lock:
            self._views[deployment.service_arn] = (deployment, [primary, *(also or [])])

    def _show_deployments(self, parsed: dict[str, Any], **_: Any) -> None:
        """after-call hook: each known service's ``deployments`` as ECS shows them; a
        deployment the relay has not seen yet (just updated) is the IN_PROGRESS primary."""
        for service in parsed.get("services", []):
            with self._views_lock:
                known = self._views.get(str(service.get("serviceArn")))
            if known is None or service.get("status") != "ACTIVE":
                continue
            deployment, views = known
            if service.get("taskDefinition") != deployment.task_definition:
                newer = primary_deployment(service)
                views = [
                    deployment_view(newer, "PRIMARY", "IN_PROGRESS"),
                    {**views[0], "status": "ACTIVE"},
                ]
            # moto's own entry keeps the fields ECS has and the relay does not play.
            base: dict[str, Any] = next(iter(service.get("deployments", [])), {})
            service["deployments"] = [{**base, **copy.deepcopy(view)} for view in views]

    def _show_builds(self, parsed: dict[str, Any], **_: Any) -> None:
        """after-call hook: a build's status as CodeBuild would report it (CodeBuild API
        reference, Build and BuildPhase): IN_PROGRESS in its BUILD phase until finished,
        then SUCCEEDED, STOPPED, or FAILED with its BUILD phase FAILED."""
        for build in parsed.get("builds", []):
            arn = str(build.get("arn"))
            with self._views_lock:
                state = self._build_states.get(arn)
            if state is None and self._recorder.was_started(arn):
                state = "IN_PROGRESS"  # started, not yet picked up by the relay's thread
            if state is None:
                continue
            show_build(build, state)

    def _failure(self, service: Mapping[str, Any]) -> str | None:
        """Why the deployment's tasks would never become healthy, or None."""
        sha = self._commit_of(str(service.get("taskDefinition", "")))
        if sha is not None and self._failing_shas is not None and sha in self._failing_shas():
            return f"commit {sha} is in ecs.fail_shas"
        if self._port_reachable is not None:
            for balancer in service.get("loadBalancers", []):
                group, port = balancer.get("targetGroupArn"), int(balancer.get("containerPort", 0))
                if group and not self._port_reachable(str(group), port):
                    return f"the security groups keep the load balancer from port {port}"
        return None

    def _commit_of(self, task_definition: str) -> str | None:
        if task_definition and task_definition not in self._commits:
            described = self._ecs.describe_task_definition(taskDefinition=task_definition)
            containers = described["taskDefinition"].get("containerDefinitions", [])
            self._commits[task_definition] = next(
                (
                    str(variable.get("value"))
                    for container in containers
                    for variable in container.get("environment", [])
                    if variable.get("name") == COMMIT_VARIABLE
                ),
                None,
            )
        return self._commits.get(task_definition)

    def _emit_deployment(
        self, deployment: Deployment, event_name: str, reason: str | None = None
    ) -> None:
        event = ecs_deployment_event(
            service_arn=deployment.service_arn,
            deployment_id=deployment.deployment_id or "ecs-svc/local",
            region=self._region,
            event_name=event_name,
            reason=reason,
        )
        self._emit("ecs_deployment", event)

    def _managed_services(self) -> list[dict[str, Any]]:
        arns = self._ecs.list_services(cluster=self._cluster).get("serviceArns", [])
        services: list[dict[str, Any]] = []
        for start in range(0, len(arns), 10):
            answer = self._ecs.describe_services(
                cluster=self._cluster, services=arns[start : start + 10], include=["TAGS"]
            )
            services.extend(answer.get("services", []))
        return [s for s in services if s.get("status") == "ACTIVE" and self._is_ours(s)]

    def _is_ours(self, service: Mapping[str, Any]) -> bool:
        tags = {t.get("key"): t.get("value") for t in service.get("tags", [])}
        return tags.get(MANAGED_TAG) == "true" and tags.get(APP_TAG) == self._app

    def _start_stand_in_task(self, service: Mapping[str, Any]) -> None:
        address = stand_in_address(str(service["serviceArn"]))
        for balancer in service.get("loadBalancers", []):
            group = balancer.get("targetGroupArn")
            if group:
                self._elbv2.register_targets(
                    TargetGroupArn=group,
                    Targets=[{"Id": address, "Port": int(balancer.get("containerPort", 80))}],
                )

    def _emit(self, handler: str, event: dict[str, Any]) -> None:
        self.emitted.append(event)
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            if self._deliver(handler, event) or self._ticker.stopping:
                return
            if attempt < DELIVERY_ATTEMPTS:  # EventBridge retries a failed Lambda invocation
                self._ticker.wait(1.0)
