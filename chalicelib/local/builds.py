"""What the app's boto3 clients ask of CodeBuild, as the local event relay needs to know it.

moto keeps neither a build's environment variables nor its stopped state, so the relay
(chalicelib/local/relay.py) learns them from botocore event hooks on the app's session:
StartBuild's parameters and answer, StopBuild's answer. Local stack only.
"""

from __future__ import annotations

import threading
from typing import Any


class BuildRecorder:
    """Sees every StartBuild/StopBuild the app's boto3 clients make (botocore event hooks),
    because moto keeps neither a build's environment variables nor its stopped state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: list[tuple[str, str, str, dict[str, str]]] = []
        self._stopped: set[str] = set()
        self._ever_started: set[str] = set()

    def install(self, events: Any) -> None:
        """Register on a boto3 Session's ``events`` before any client is created."""
        events.register("before-parameter-build.codebuild.*", self._remember_params)
        events.register("after-call.codebuild.StartBuild", self._after_start)
        events.register("after-call.codebuild.StopBuild", self._after_stop)

    def take_started(self) -> list[tuple[str, str, str, dict[str, str]]]:
        with self._lock:
            started, self._started = self._started, []
            return started

    def was_started(self, build_arn: str) -> bool:
        with self._lock:
            return build_arn in self._ever_started

    def was_stopped(self, build_arn: str) -> bool:
        with self._lock:
            return build_arn in self._stopped

    def _remember_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["branchenv_local_params"] = dict(params)

    def _after_start(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        build = parsed.get("build")
        if not isinstance(build, dict) or "arn" not in build:
            return
        params = context.get("branchenv_local_params", {})
        variables = {
            str(v.get("name")): str(v.get("value", ""))
            for v in params.get("environmentVariablesOverride", [])
        }
        source = str(params.get("sourceVersion") or build.get("sourceVersion") or "")
        with self._lock:
            self._ever_started.add(str(build["arn"]))
            self._started.append(
                (build["arn"], str(build.get("projectName", "")), source, variables)
            )

    def _after_stop(self, parsed: dict[str, Any], **_: Any) -> None:
        build = parsed.get("build")
        if isinstance(build, dict) and "arn" in build:
            with self._lock:
                self._stopped.add(str(build["arn"]))
