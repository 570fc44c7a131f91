"""GitHub: the gateway branchenv reads branches and files through, and the deployments
that make a pull request show "View deployment" for its preview.

:class:`GitHubGateway` is the only code that calls PyGithub. It answers ``None`` where a
branch, repository or file is gone, and raises :class:`GitHubError` for anything else;
secondary rate limits and 5xx are retried with backoff by PyGithub's ``GithubRetry``.
:class:`GitHubDeployments` is the notify channel: for each deployed sha a Deployment on
``preview/<branch>`` and its statuses (in_progress, success with the preview URL, failure
with the log link; inactive once a newer commit's preview replaced it, and for all of
them once the branch is deleted).

Must never: import PyGithub at module import time; log or return the token; put a
secret in a deployment description.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.environments import Environment, Status
from chalicelib.notify import current_sha, redact

if TYPE_CHECKING:
    from github import Github
    from github.Repository import Repository
    from urllib3.util.retry import Retry

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"
TIMEOUT_SECONDS = 10
MAX_DESCRIPTION = 140  # GitHub rejects longer deployment status descriptions
KEEP_SHAS = 20
DEPLOYMENT_STATES = frozenset(
    {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
)


class GitHubError(Exception):
    """A GitHub API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def github_retry(
    *, total: int = 2, backoff_factor: float = 0.5, secondary_rate_wait: float = 20.0
) -> Retry:
    """PyGithub's retry policy: 5xx and secondary rate limits (403/429 with Retry-After or a
    rate-limit message) are retried with exponential backoff; waits are capped so a
    notification never holds a deploy for long."""
    from github.GithubRetry import GithubRetry

    return GithubRetry(
        total=total,
        backoff_factor=backoff_factor,
        secondary_rate_wait=secondary_rate_wait,
        max_rate_limit_wait=max(secondary_rate_wait, 30.0),
        status_forcelist=[*range(500, 600), 429],
    )


class GitHubGateway:
    """Branches, files and deployments of GitHub repositories, through PyGithub."""

    def __init__(
        self,
        token: str | Callable[[], str],
        base_url: str = DEFAULT_API_URL,
        *,
        timeout: int = TIMEOUT_SECONDS,
        retry: Retry | None = None,
        seconds_between_requests: float = 0.25,
        seconds_between_writes: float = 1.0,
    ) -> None:
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._retry = retry
        self._pauses = (seconds_between_requests, seconds_between_writes)
        self._github: Github | None = None
        self._github_token: str | None = None

    def branch_head(self, repository: str, branch: str) -> str | None:
        """The sha the branch points at, or None when the branch or repository is gone."""
        from github import UnknownObjectException

        try:
            return str(self._call(lambda: self._repo(repository).get_branch(branch).commit.sha))
        except GitHubError as exc:
            if isinstance(exc.__cause__, UnknownObjectException):
                return None
            raise

    def list_branches(self, repository: str) -> dict[str, str]:
        """Every branch of ``repository`` (name → head sha), in one paginated listing."""
        return self._call(
            lambda: {b.name: b.commit.sha for b in self._repo(repository).get_branches()}
        )

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        """The text of ``path`` at ``ref``, or None when there is no such file."""
        from github import UnknownObjectException

        def read() -> str | None:
            found = self._repo(repository).get_contents(path, ref=ref)
            if isinstance(found, list):
                return None  # a directory
            return found.decoded_content.decode("utf-8")

        try:
            return self._call(read)
        except GitHubError as exc:
            if isinstance(exc.__cause__, UnknownObjectException):
                return None
            raise

    def find_deployment(self, repository: str, sha: str, environment: str) -> int | None:
        """The newest deployment of ``sha`` to ``environment``, if there is one."""

        def first() -> int | None:
            for deployment in self._repo(repository).get_deployments(
                sha=sha, environment=environment
            ):
                return int(deployment.id)
            return None

        return self._call(first)

    def deployment_ids(self, repository: str, environment: str) -> list[int]:
        """Every deployment to ``environment``, newest first."""
        return self._call(
            lambda: [
                int(d.id) for d in self._repo(repository).get_deployments(environment=environment)
            ]
        )

    def create_deployment(
        self, repository: str, sha: str, environment: str, description: str
    ) -> int:
        """A transient deployment of ``sha`` that needs no status checks and merges nothing."""
        deployment = self._call(
            lambda: self._repo(repository).create_deployment(
                ref=sha,
                environment=environment,
                description=description,
                transient_environment=True,
                production_environment=False,
                auto_merge=False,
                required_contexts=[],
            )
        )
        return int(deployment.id)

    def create_deployment_status(
        self,
        repository: str,
        deployment_id: int,
        state: str,
        *,
        description: str,
        environment_url: str | None = None,
        log_url: str | None = None,
    ) -> None:
        """Add a status to a deployment; ``log_url`` becomes its "View logs" link."""
        if state not in DEPLOYMENT_STATES:
            raise ValueError(f"{state!r} is not a GitHub deployment state")
        extra: dict[str, Any] = {}
        if environment_url:
            extra["environment_url"] = environment_url
        if log_url:
            extra["target_url"] = log_url  # PyGithub's name for log_url
        self._call(
            lambda: (
                self._repo(repository)
                .get_deployment(deployment_id)
                .create_status(state, description=description[:MAX_DESCRIPTION], **extra)
            )
        )

    def _repo(self, repository: str) -> Repository:
        return self._client().get_repo(repository)

    def _client(self) -> Github:
        """The PyGithub client for the current token: a callable token (a GitHub App's
        installation token) is asked on every call and the client rebuilt when it changed."""
        token = self._token if isinstance(self._token, str) else self._token()
        if self._github is None or token != self._github_token:
            from github import Auth, Github

            self._github_token = token
            self._github = Github(
                base_url=self._base_url,
                auth=Auth.Token(token),
                timeout=self._timeout,
                retry=self._retry or github_retry(),
                per_page=100,
                seconds_between_requests=self._pauses[0],
                seconds_between_writes=self._pauses[1],
                lazy=True,
            )
        return self._github

    @staticmethod
    def _call(action: Callable[[], T]) -> T:
        from github import GithubException
        from requests.exceptions import RequestException, RetryError

        try:
            return action()
        except GithubException as exc:
            raise GitHubError(
                f"GitHub answered {exc.status}: {redact(str(exc.message or ''))}",
                status=exc.status,
            ) from exc
        except RetryError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            raise GitHubError(f"GitHub kept failing after retries: {reason}") from exc
        except RequestException as exc:
            raise GitHubError(f"GitHub could not be reached: {type(exc).__name__}") from exc


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
        Status.FAILED: "failure",
    }.get(status)


def status_description(env: Environment) -> str:
    """A short, secret-free description (GitHub allows 140 characters)."""
    if env.status == Status.FAILED:
        text = redact(env.reason or "The preview failed; see the logs.")
    elif env.status == Status.READY:
        text = "The preview is ready."
    else:
        text = f"The preview is {env.status.value}."
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
