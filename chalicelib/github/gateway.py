"""GitHub's REST API (the only caller of PyGithub): branches, files and deployments.

:class:`GitHubGateway` is branchenv's source of truth about branches (does it exist, where
is its head, what is its branchenv.yml at a sha) and the API the deployments channel
(chalicelib.notify.github) writes through. It answers ``None`` where a branch, repository
or file is gone, and raises :class:`GitHubError` for anything else; secondary rate limits
and 5xx are retried with backoff by PyGithub's ``GithubRetry``.

Must never: import PyGithub at module import time; log or return the token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.domain.redaction import redact
from chalicelib.domain.settings import default_of

if TYPE_CHECKING:
    from github import Github
    from github.Repository import Repository
    from urllib3.util.retry import Retry

T = TypeVar("T")
DEFAULT_API_URL: str = default_of("github_api_url")
TIMEOUT_SECONDS = 10
MAX_DESCRIPTION = 140  # GitHub rejects longer deployment status descriptions
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
