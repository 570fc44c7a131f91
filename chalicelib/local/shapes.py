"""What ECS, ECR and CodeBuild show of the things the local event relay plays: pure shapes.

The relay (chalicelib/local/relay.py) decides what happens; this module only builds the
answers AWS would give about it: an ECS service's ``deployments`` entries (ECS API
reference, Deployment), a build's status and phases (CodeBuild API reference, Build and
BuildPhase), a Docker image manifest, the stand-in task's address. No I/O; local stack
only, never imported by the deployed Lambda.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TASK_SUBNET = ipaddress.ip_network("10.0.10.0/24")
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
# The phases a build has passed once it runs its buildspec's build phase.
_EARLY_PHASES = frozenset(
    {"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD"}
)


@dataclass(frozen=True)
class Deployment:
    """One ECS deployment as the relay follows it."""

    service_arn: str
    task_definition: str
    deployment_id: str


def show_build(build: dict[str, Any], state: str) -> None:
    """Make a BatchGetBuilds entry say ``state``: IN_PROGRESS in its BUILD phase, or
    SUCCEEDED, STOPPED, or FAILED with its BUILD phase FAILED (moto says SUCCEEDED)."""
    build["buildStatus"] = state
    early = [p for p in build.get("phases", []) if p.get("phaseType") in _EARLY_PHASES]
    if state == "IN_PROGRESS":
        build["currentPhase"] = "BUILD"
        build.pop("endTime", None)
        build["phases"] = early
    elif state == "FAILED":
        build["currentPhase"] = "COMPLETED"
        build["phases"] = [*early, {"phaseType": "BUILD", "phaseStatus": "FAILED"}]


def deployment_view(
    deployment: Deployment, status: str, state: str, reason: str | None = None
) -> dict[str, Any]:
    """One entry of DescribeServices' ``deployments`` (ECS API reference, Deployment)."""
    words = {"IN_PROGRESS": "in progress", "COMPLETED": "completed", "FAILED": "failed"}
    return {
        "id": deployment.deployment_id,
        "status": status,
        "taskDefinition": deployment.task_definition,
        "rolloutState": state,
        "rolloutStateReason": reason
        or f"ECS deployment {deployment.deployment_id} {words.get(state, state.lower())}.",
    }


def primary_deployment(service: Mapping[str, Any]) -> Deployment:
    primary: Mapping[str, Any] = next(
        (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {}
    )
    return Deployment(
        str(service["serviceArn"]),
        str(service.get("taskDefinition", "")),
        str(primary.get("id", "")),
    )


def image_tags(sha: str, variables: Mapping[str, str]) -> list[str]:
    """The tags a build pushes: the sha, and every ``*_TAG`` variable it was given."""
    tags = [sha] if sha else []
    for name, value in variables.items():
        if name.endswith("TAG") and value and value not in tags:
            tags.append(value)
    return tags


def stand_in_address(service_arn: str) -> str:
    """A stable private IP in the task subnet for the service's stand-in task."""
    offset = int(hashlib.sha256(service_arn.encode()).hexdigest(), 16) % 250 + 4
    return str(TASK_SUBNET.network_address + offset)


def manifest(sha: str) -> str:
    """A Docker image manifest whose digest is unique to ``sha``."""
    config = hashlib.sha256(f"config:{sha}".encode()).hexdigest()
    layer = hashlib.sha256(f"layer:{sha}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1469,
                "digest": f"sha256:{config}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 3370706,
                    "digest": f"sha256:{layer}",
                }
            ],
        }
    )
