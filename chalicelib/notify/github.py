"""GitHub deployments: what makes a pull request show "View deployment" for its preview.

:class:`GitHubDeployments` is the notify channel, writing through
:class:`chalicelib.github.gateway.GitHubGateway`: for each deployed sha a Deployment on
``preview/<branch>`` and its statuses (in_progress, success with the preview URL, failure
with the log link; inactive once a newer commit's preview replaced it, and for all of
them once the branch is deleted). A sleeping preview keeps its ``success``: its URL still
answers (the first request wakes it), so going to sleep and waking again post nothing
when GitHub already shows that commit's success.

Must never: import PyGithub at module import time; log or return the token; put a
secret in a deployment description.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.environments import Environment, Status
from chalicelib.github.gateway import MAX_DESCRIPTION, GitHubGateway
from chalicelib.notify import current_sha, redact

KEEP_SHAS = 20


class GitHubDeployments:
    """Keeps the GitHub deployments of an environment in step with it (a notify Channel)."""

    name = "github"

    def __init__(self, gateway: GitHubGateway, url_for: Callable[[Environment], str]) -> None:
        self._gateway = gateway
        self._url_for = url_for

    def sync(self, env: Environment, state: dict[str, Any]) -> None:
        """Create the deployment of the current sha and give it the status that matches
        ``env``; on deletion mark every deployment of the branch inactive."""
        if env.status == Status.DELETED:
            self._retire(env, state)
            return
        state.pop("retired", None)
        state.pop("inactive_ids", None)
        sha = current_sha(env)
        wanted = deployment_state(env.status)
        if sha is None or wanted is None:
            return
        deployments: dict[str, dict[str, Any]] = state.setdefault("deployments", {})
        record = deployments.get(sha)
        if record is None:
            record = {"id": self._deployment_for(env, sha), "state": None}
            deployments[sha] = record
            for old in list(deployments)[:-KEEP_SHAS]:
                del deployments[old]
        if record.get("state") != wanted:
            self._gateway.create_deployment_status(
                env.repository,
                record["id"],
                wanted,
                description=status_description(env),
                environment_url=self._url_for(env) if wanted == "success" else None,
                log_url=env.log_url if wanted in ("failure", "in_progress") else None,
            )
            record["state"] = wanted
        if wanted == "success":
            self._supersede(env, sha, deployments)

    def _supersede(self, env: Environment, sha: str, deployments: dict[str, Any]) -> None:
        """Mark inactive every other deployment of the branch that still shows success.

        GitHub's ``auto_inactive`` (on by default when a status is success) only touches
        "prior non-transient, non-production environment deployments" (REST API, "Create
        a deployment status"); previews are created ``transient_environment`` (the
        environment goes away with the branch, and GitHub shows an inactive transient
        deployment as destroyed), so GitHub leaves their older deployments active and
        branchenv does what auto_inactive would: only deployments that had a success
        state, and a failed one stays failed. A call that fails leaves the rest for the
        next converge (each record's state is kept as it goes).
        """
        for other, record in deployments.items():
            if other == sha or record.get("state") != "success":
                continue
            self._gateway.create_deployment_status(
                env.repository,
                record["id"],
                "inactive",
                description=f"Replaced by the preview of {sha[:7]}.",
            )
            record["state"] = "inactive"

    def _deployment_for(self, env: Environment, sha: str) -> int:
        environment = environment_name(env)
        found = self._gateway.find_deployment(env.repository, sha, environment)
        if found is not None:
            return found
        return self._gateway.create_deployment(
            env.repository, sha, environment, f"branchenv preview of {env.branch}"
        )

    def _retire(self, env: Environment, state: dict[str, Any]) -> None:
        if state.get("retired"):
            return
        records = state.get("deployments", {}).values()
        recorded = {int(r["id"]) for r in records}
        replaced = {int(r["id"]) for r in records if r.get("state") == "inactive"}
        listed = self._gateway.deployment_ids(env.repository, environment_name(env))
        done: list[int] = state.setdefault("inactive_ids", [])
        for deployment_id in sorted(recorded.union(listed)):
            if deployment_id in done or deployment_id in replaced:
                continue
            self._gateway.create_deployment_status(
                env.repository,
                deployment_id,
                "inactive",
                description="The branch was deleted; its preview is gone.",
            )
            done.append(deployment_id)
        for record in state.get("deployments", {}).values():
            record["state"] = "inactive"
        state["retired"] = True


def environment_name(env: Environment) -> str:
    """The GitHub environment a branch's previews are deployed to."""
    return f"preview/{env.branch}"


def deployment_state(status: Status) -> str | None:
    """The deployment status that shows ``status`` on GitHub (None: nothing to say)."""
    return {
        Status.PENDING: "in_progress",
        Status.BUILDING: "in_progress",
        Status.DEPLOYING: "in_progress",
        Status.READY: "success",
        # Still success: the URL answers and wakes it. Posted only if GitHub did not
        # already show success for the deployed commit (a failed notification to catch up).
        Status.SLEEPING: "success",
        Status.FAILED: "failure",
    }.get(status)


def status_description(env: Environment) -> str:
    """A short, secret-free description (GitHub allows 140 characters)."""
    if env.status == Status.FAILED:
        text = redact(env.reason or "The preview failed; see the logs.")
    elif env.status == Status.READY:
        text = "The preview is ready."
    elif env.status == Status.SLEEPING:
        text = "The preview is asleep; it wakes on the first request."
    else:
        text = f"The preview is {env.status.value}."
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
