"""CodeBuild (the only caller): starts, reads and stops the image builds of branches.

A Lambda cannot run Docker, so the image of a sha is built by the installation's CodeBuild
project (terraform/buildspec.yml), which builds the repository's Dockerfile at exactly that
sha and pushes the sha tag and the branch tag to ECR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate

IN_PROGRESS = "IN_PROGRESS"
FAILED_STATES = frozenset({"FAILED", "FAULT", "TIMED_OUT", "STOPPED"})


@dataclass(frozen=True)
class Build:
    """One CodeBuild build: its id, status, the sha it builds and where its log is."""

    id: str
    status: str
    source_version: str | None
    log_url: str | None
    failed_phase: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATES


class Builds:
    """Builds of one CodeBuild project."""

    def __init__(self, client: Any, project: str) -> None:
        self._client = client
        self._project = project

    def start(
        self,
        *,
        sha: str,
        repository_uri: str,
        sha_tag: str,
        branch_tag: str,
        slug: str,
        idempotency_token: str | None = None,
    ) -> Build:
        """Build the repository at ``sha`` and push ``sha_tag`` and ``branch_tag``. A
        repeat with the same ``idempotency_token`` within five minutes starts no second
        build: CodeBuild answers with the first (API reference, StartBuild)."""
        variables = {
            "IMAGE_REPOSITORY_URI": repository_uri,
            "IMAGE_SHA_TAG": sha_tag,
            "IMAGE_BRANCH_TAG": branch_tag,
            "BRANCHENV_ENV": slug,
        }
        try:
            answer = self._client.start_build(
                projectName=self._project,
                sourceVersion=sha,
                environmentVariablesOverride=[
                    {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()
                ],
                **({"idempotencyToken": idempotency_token} if idempotency_token else {}),
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "StartBuild", not_found=("ResourceNotFoundException",)) from exc
        return _build(answer["build"])

    def get(self, build_id: str) -> Build | None:
        try:
            answer = self._client.batch_get_builds(ids=[build_id])
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "BatchGetBuilds") from exc
        builds = answer.get("builds", [])
        return _build(builds[0]) if builds else None

    def stop(self, build_id: str) -> None:
        """Stop a build; one that already finished is fine."""
        try:
            self._client.stop_build(id=build_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (
                "InvalidInputException",
                "ResourceNotFoundException",
            ):
                return
            raise translate(exc, "StopBuild") from exc
        except BotoCoreError as exc:
            raise translate(exc, "StopBuild") from exc


def _build(raw: dict[str, Any]) -> Build:
    failed_phase = next(
        (
            p.get("phaseType")
            for p in raw.get("phases", [])
            if p.get("phaseStatus") in FAILED_STATES
        ),
        None,
    )
    return Build(
        id=str(raw["id"]),
        status=str(raw.get("buildStatus", IN_PROGRESS)),
        source_version=raw.get("resolvedSourceVersion") or raw.get("sourceVersion"),
        log_url=(raw.get("logs") or {}).get("deepLink"),
        failed_phase=failed_phase,
    )
