"""The one place that decides what a branch's image and rollout mean for its status.

The planner (chalicelib/engine/converge/planner.py) decides which steps to run; what an
environment *is* while they run — building, deploying, ready or failed, and why — is
decided here, from the record, what AWS holds and the signal that woke converge:

- :func:`image_verdict`: no image for the desired commit yet: the build failed, CI or a
  retag is awaited, a build is running, or (None) a build must start;
- :func:`rollback_verdict`: ECS's deployment circuit breaker rolled the commit back;
- :func:`readiness`: whether the rollout converge started has completed, and whether a
  healthy target must still be seen.

Signals are delivered at least once and not in order (EventBridge), so an event counts
only when it is about the current build or rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chalicelib.aws.ecs import Service
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.messages import Signal, SignalKind
from chalicelib.engine.converge.model import Observed, Target


@dataclass(frozen=True)
class Verdict:
    """A status, the reason a developer reads and the log to open."""

    status: Status
    reason: str | None = None
    log_url: str | None = None


class Readiness(Enum):
    READY = "ready"  # the record or ECS's event about the recorded rollout says so
    READY_ONCE_HEALTHY = "ready once a target is healthy"  # ECS completed; check ELB
    DEPLOYING = "deploying"


def building(sha: str, log_url: str | None = None) -> Verdict:
    return Verdict(Status.BUILDING, f"building image {sha[:12]}", log_url)


def image_verdict(
    env: Environment, observed: Observed, target: Target, signal: Signal | None
) -> Verdict | None:
    """The status while the desired commit has no image; None when a build must start."""
    sha = env.desired_sha
    assert sha is not None
    if signal and signal.kind == SignalKind.BUILD_FAILED and signal.sha == sha:
        return Verdict(Status.FAILED, signal.reason, signal.log_url)
    if target.image_source == "ci":
        return Verdict(Status.BUILDING, f"waiting for CI to push {target.repository_uri}:{sha}")
    if target.image_source == "retag":
        reason = f"waiting for an image tagged {target.source_tag} to retag as {sha[:12]}"
        return Verdict(Status.BUILDING, reason)
    build = observed.build
    if build is None or build.source_version != sha:
        return None
    if build.failed:
        phase = f" in its {build.failed_phase} phase" if build.failed_phase else ""
        reason = (
            f"the image build for {sha[:7]} {build.status.lower()}{phase}; "
            "open the build log, fix the Dockerfile or the code, and push again"
        )
        return Verdict(Status.FAILED, reason, build.log_url)
    return building(sha, build.log_url)


def rollback_verdict(
    env: Environment,
    service: Service,
    current_td: str,
    signal: Signal | None,
    target: Target,
) -> Verdict | None:
    """Failed when ECS's circuit breaker rolled revision ``current_td`` back (the service
    runs the previous one again): ECS's verdict on this commit, never a diff to re-apply
    (ECS developer guide, "deployment circuit breaker")."""
    rolled_back = service.failed_deployment_of(current_td)
    failed_now = _failure_of(signal, service, current_td)
    if not failed_now and rolled_back is None:
        return None
    said = signal.reason if failed_now and signal and signal.reason else None
    if said is None and rolled_back is not None:
        said = rolled_back.rollout_reason
    return Verdict(Status.FAILED, _deployment_failure(said, service, env), target.log_url)


def readiness(env: Environment, service: Service, signal: Signal | None) -> Readiness:
    """Where the rollout of the desired commit stands, its service in place and current."""
    if env.status == Status.READY and env.deployed_sha == env.desired_sha:
        return Readiness.READY
    if completes_recorded_rollout(env, signal):
        # ECS completed the rollout converge started: its tasks passed the load
        # balancer's health check (ECS counts a task healthy only then).
        return Readiness.READY
    # A completed event about another deployment than the current rollout (the service's
    # PRIMARY one when ECS was asked, else the one the record names) is a late or repeated
    # event of an earlier rollout: it says nothing about this one. Knowing no deployment,
    # any counts.
    completed = signal is not None and signal.kind == SignalKind.DEPLOYMENT_COMPLETED
    current = service.primary_deployment_id or env.deployment_id
    if completed and current is not None:
        completed = signal is not None and signal.deployment_id == current
    if completed or service.rollout_state == "COMPLETED":
        return Readiness.READY_ONCE_HEALTHY
    return Readiness.DEPLOYING


def completes_recorded_rollout(env: Environment, signal: Signal | None) -> bool:
    """Whether ``signal`` is ECS's SERVICE_DEPLOYMENT_COMPLETED for the rollout that
    converge started last (its deployment id is in the record)."""
    return (
        signal is not None
        and signal.kind == SignalKind.DEPLOYMENT_COMPLETED
        and env.deployment_id is not None
        and signal.deployment_id == env.deployment_id
    )


def _failure_of(signal: Signal | None, service: Service, current_td: str) -> bool:
    """Whether a deployment_failed signal is about the revision being deployed now: a
    deployment ECS still lists for another revision makes it a late or repeated event
    about an earlier rollout."""
    if signal is None or signal.kind != SignalKind.DEPLOYMENT_FAILED:
        return False
    listed = {deployment.id: deployment for deployment in service.deployments}
    deployment = listed.get(signal.deployment_id or "")
    return deployment is None or deployment.task_definition_arn == current_td


def _deployment_failure(said: str | None, service: Service, env: Environment) -> str:
    """A reason a developer can act on: what ECS said, what still serves, what to do."""
    said = said or "the deployment circuit breaker stopped the rollout"
    latest = service.events[0] if service.events else None
    detail = f" ECS: {latest}" if latest and latest not in said else ""
    sha = (env.desired_sha or "")[:7]
    previous = env.deployed_sha
    if previous and previous != env.desired_sha:
        serving = f" ECS rolled back: {previous[:7]} keeps serving the preview."
    else:
        serving = " No earlier commit of this branch was ready, so nothing serves the preview."
    return (
        f"the deployment of {sha} failed: {said}.{detail}{serving} Read the task logs "
        "(link), fix the app or its health check path, and push again"
    ).replace("..", ".")
