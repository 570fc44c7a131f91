"""Events back from AWS (EventBridge) → converge requests on the work queue.

The ``on_cw_event`` handlers in app.py call :func:`handle`; it only translates: it works
out which environment an event is about, and queues a converge request for it in that
environment's message group (its slug), so it is processed in order with the branch's
webhooks. An event names its environment (a build's BRANCHENV_ENV, a service's name), so
the handler reads no record; only an image pushed by CI (``ci`` mode) is matched to the
environments that want its sha. It never changes AWS itself. Events about resources that
are not ours are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.environments import EnvironmentStore
from chalicelib.domain.messages import ConvergeRequest, Queue, Signal, SignalKind
from chalicelib.domain.settings import Settings

log = logging.getLogger(__name__)

BUILD_FAILED_STATES = frozenset({"FAILED", "FAULT", "TIMED_OUT", "STOPPED"})


@dataclass(frozen=True)
class Translation:
    """Which environments an event concerns (by slug, or by the sha they want) and the
    converge request to queue for each."""

    slug: str | None
    sha: str | None
    cause: str
    detail: dict[str, Any]


def translate(event: dict[str, Any], settings: Settings) -> Translation | None:
    """The converge request an EventBridge event asks for, or None if it is not ours."""
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    if not isinstance(detail, dict):
        return None
    translators: dict[
        str, Callable[[dict[str, Any], dict[str, Any], Settings], Translation | None]
    ] = {
        "CodeBuild Build State Change": _codebuild,
        "ECR Image Action": _ecr,
        "ECS Deployment State Change": _ecs_deployment,
        "ECS Task State Change": _ecs_task,
    }
    translator = translators.get(str(detail_type))
    return translator(event, detail, settings) if translator else None


def handle(
    event: dict[str, Any], settings: Settings, store: EnvironmentStore, queue: Queue
) -> list[str]:
    """Queue converge requests for the environments ``event`` concerns; return their slugs."""
    translation = translate(event, settings)
    if translation is None:
        name = (event.get("detail") or {}).get("eventName") or event.get("detail-type")
        log.info("ignoring %s: nothing for branchenv to do", name)
        return []
    slugs = _targets(translation, store)
    for slug in slugs:
        request = ConvergeRequest(slug=slug, cause=translation.cause, detail=translation.detail)
        queue.send(
            request.to_message(),
            group_id=slug,  # EnvironmentNames.queue_group_id: the slug
            dedup_id=f"{event.get('id', '')}:{slug}" if event.get("id") else None,
        )
    return slugs


def _targets(translation: Translation, store: EnvironmentStore) -> list[str]:
    """The slugs the event concerns: the one it names, or every environment that wants
    the sha (one scan)."""
    if translation.slug is not None:
        return [translation.slug]
    if translation.sha is None:
        return []
    return sorted(
        env.slug
        for env in store.scan()
        if env.desired == "present" and env.desired_sha == translation.sha
    )


def _codebuild(
    event: dict[str, Any], detail: dict[str, Any], settings: Settings
) -> Translation | None:
    if detail.get("project-name") != settings.codebuild_project:
        return None
    info = detail.get("additional-information") or {}
    variables = _variables((info.get("environment") or {}).get("environment-variables", []))
    slug = variables.get("BRANCHENV_ENV")
    if not slug:
        return None
    status = str(detail.get("build-status", ""))
    sha = info.get("source-version") or variables.get("IMAGE_SHA_TAG")
    log_url = (info.get("logs") or {}).get("deep-link")
    if status == "SUCCEEDED":
        signal = Signal(SignalKind.BUILD_SUCCEEDED, sha=sha, log_url=log_url)
        return Translation(slug, None, "image built", signal.to_detail())
    if status in BUILD_FAILED_STATES:
        phase = _failed_phase(info.get("phases", []))
        where = f" in its {phase} phase" if phase else ""
        reason = (
            f"the image build for {str(sha)[:7]} {status.lower()}{where}; open the build "
            "log, fix the Dockerfile or the code, and push again"
        )
        signal = Signal(SignalKind.BUILD_FAILED, sha=sha, reason=reason, log_url=log_url)
        return Translation(slug, None, "image build failed", signal.to_detail())
    return None


def _ecr(event: dict[str, Any], detail: dict[str, Any], settings: Settings) -> Translation | None:
    """An image CI pushed. Only ``ci`` mode waits for one: a build's own push is told by
    the build's event, and ``retag`` adopts images itself."""
    if (
        settings.image_source != "ci"
        or detail.get("repository-name") != settings.ecr_repository
        or detail.get("action-type") != "PUSH"
        or detail.get("result") != "SUCCESS"
    ):
        return None
    tag = detail.get("image-tag")
    if not isinstance(tag, str) or not tag:
        return None
    signal = Signal(SignalKind.IMAGE_PUSHED, sha=tag)
    return Translation(None, tag, "image pushed", signal.to_detail())


def _ecs_deployment(
    event: dict[str, Any], detail: dict[str, Any], settings: Settings
) -> Translation | None:
    slug = _service_slug(_service_names(event.get("resources", [])), settings)
    name = detail.get("eventName")
    if slug is None:
        return None
    deployment = detail.get("deploymentId")
    if name == "SERVICE_DEPLOYMENT_COMPLETED":
        signal = Signal(SignalKind.DEPLOYMENT_COMPLETED, deployment_id=deployment)
        return Translation(slug, None, "deployment completed", signal.to_detail())
    if name == "SERVICE_DEPLOYMENT_FAILED":
        signal = Signal(
            SignalKind.DEPLOYMENT_FAILED, reason=detail.get("reason"), deployment_id=deployment
        )
        return Translation(slug, None, "deployment failed", signal.to_detail())
    return None


def _ecs_task(
    event: dict[str, Any], detail: dict[str, Any], settings: Settings
) -> Translation | None:
    """A Fargate Spot interruption of one of our services' tasks, told once per task.

    One interruption sends several Task State Change events for the same task, all with
    ``stopCode`` SpotInterruption: the two-minute termination notice while the task still
    runs (``desiredStatus`` STOPPED, ``lastStatus`` RUNNING: AWS Knowledge Center, "How do
    I handle Spot termination notices in AWS Fargate Spot tasks?"), then one per step of
    the way down, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED (ECS Developer Guide,
    "Amazon ECS task lifecycle" and "Amazon ECS task state change events"). Only STOPPED,
    the last, is translated; EventBridge may still deliver it more than once (same
    ``detail.version``: ECS Developer Guide, "Amazon ECS events"), so the task's ARN goes
    along as ``task_arn`` for converge to count each stopped task once.
    """
    group = str(detail.get("group", ""))
    if (
        not group.startswith("service:")
        or detail.get("stopCode") != "SpotInterruption"
        or detail.get("lastStatus") != "STOPPED"
        or not detail.get("taskArn")
    ):
        return None
    slug = _service_slug([group.removeprefix("service:")], settings)
    if slug is None:
        return None
    signal = Signal(
        SignalKind.SPOT_INTERRUPTED,
        reason=detail.get("stoppedReason"),
        task_arn=str(detail["taskArn"]),
    )
    return Translation(slug, None, "spot interruption", signal.to_detail())


def _service_names(resources: Iterable[Any]) -> list[str]:
    return [str(arn).rsplit("/", 1)[-1] for arn in resources if ":service/" in str(arn)]


def _service_slug(service_names: list[str], settings: Settings) -> str | None:
    """The slug in a service name ``<app>-<slug>_<generation>`` (see names.py)."""
    prefix = f"{settings.app_name}-"
    for name in service_names:
        head, _, generation = name.rpartition("_")
        if head.startswith(prefix) and generation.isdigit():
            return head.removeprefix(prefix)
    return None


def _variables(items: Iterable[Any]) -> dict[str, str]:
    return {str(i.get("name")): str(i.get("value")) for i in items if isinstance(i, dict)}


def _failed_phase(phases: Iterable[Any]) -> str | None:
    for phase in phases:
        if isinstance(phase, dict) and phase.get("phase-status") in BUILD_FAILED_STATES:
            return str(phase.get("phase-type"))
    return None
