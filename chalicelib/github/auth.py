"""GitHub credentials: the one place that turns settings into "a callable that returns a
currently valid token", for a personal or fine-grained token and for a GitHub App.

- A token (``BRANCHENV_GITHUB_TOKEN`` / ``..._TOKEN_ARN``) is returned as is; a Secrets
  Manager value is read on the first call and kept (chalicelib.aws.secrets, the one
  reader of secret settings).
- A GitHub App (``BRANCHENV_GITHUB_APP_ID``, ``..._INSTALLATION_ID`` and the private key,
  ``..._PRIVATE_KEY_ARN`` or ``..._PRIVATE_KEY``) signs a JWT with PyGithub's
  ``Auth.AppAuth`` and exchanges it through ``GithubIntegration.get_access_token`` for an
  installation token, which is kept until a few minutes before its ``expires_at``
  (installation tokens last an hour), so a warm Lambda mints one an hour, not one a call.

Nothing is read or minted before the first call, so a Secrets Manager or GitHub failure
is a failure of the call that needed the token (a notification retried later), never of
start-up. Must never: log, raise or repr the private key, a JWT or a token; import
PyGithub at module import time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chalicelib.domain.redaction import redact
from chalicelib.github.gateway import DEFAULT_API_URL, TIMEOUT_SECONDS, GitHubError

if TYPE_CHECKING:
    from github import GithubIntegration
    from github.Auth import AppAuth
    from urllib3.util.retry import Retry

    from chalicelib.aws.clients import ClientFactory
    from chalicelib.aws.secrets import Secrets
    from chalicelib.domain.settings import Settings

TokenSource = Callable[[], str]
Clock = Callable[[], float]
RENEW_BEFORE_EXPIRY_SECONDS = 300.0


class InstallationTokens:
    """Installation tokens of one GitHub App installation, minted when needed and reused
    until ``renew_before`` seconds before they expire (by ``clock``)."""

    def __init__(
        self,
        app_id: int,
        installation_id: int,
        private_key: TokenSource,
        base_url: str = DEFAULT_API_URL,
        *,
        clock: Clock = time.time,
        renew_before: float = RENEW_BEFORE_EXPIRY_SECONDS,
        timeout: int = TIMEOUT_SECONDS,
        retry: Retry | None = None,
        seconds_between_writes: float = 1.0,
    ) -> None:
        self._app_id = app_id
        self._installation_id = installation_id
        self._private_key = private_key
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._renew_before = renew_before
        self._timeout = timeout
        self._retry = retry
        self._write_pause = seconds_between_writes
        self._integration: GithubIntegration | None = None
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """A token GitHub accepts now: the kept one, or a new one when it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, expires_at = self._mint()
                self._renew_at = expires_at - self._renew_before
            return self._token

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(app_id={self._app_id}, installation_id={self._installation_id})"
        )

    def _mint(self) -> tuple[str, float]:
        from github import GithubException
        from requests.exceptions import RequestException

        integration = self._github_integration()
        try:
            authorization = integration.get_access_token(self._installation_id)
        except GithubException as exc:
            raise GitHubError(
                f"GitHub refused an installation token for App {self._app_id}, installation "
                f"{self._installation_id} ({exc.status}: {redact(str(exc.message or ''))}); "
                "check the App id, the installation id and that the private key is the App's",
                status=exc.status,
            ) from None
        except RequestException as exc:
            raise GitHubError(
                f"GitHub could not be reached for an installation token: {type(exc).__name__}"
            ) from None
        return authorization.token, _epoch_seconds(authorization.expires_at)

    def _github_integration(self) -> GithubIntegration:
        if self._integration is None:
            from github import Auth, GithubIntegration

            auth = Auth.AppAuth(str(self._app_id), self._private_key())
            _check_signs(auth)
            self._integration = GithubIntegration(
                auth=auth,
                base_url=self._base_url,
                timeout=self._timeout,
                retry=self._retry,
                seconds_between_requests=0,
                seconds_between_writes=self._write_pause,
            )
        return self._integration


def _check_signs(auth: AppAuth) -> None:
    """Sign one JWT now, so a key that is not an RSA private key fails here with a message
    that names the settings, instead of a cryptography error that might quote the input."""
    try:
        auth.create_jwt()
    except Exception:  # PyJWT/cryptography raise several types; none may reach a log
        raise GitHubError(
            "the GitHub App private key cannot sign a JWT: put the App's .pem file (an RSA "
            "private key) into BRANCHENV_GITHUB_APP_PRIVATE_KEY_ARN's secret "
            "(or BRANCHENV_GITHUB_APP_PRIVATE_KEY locally)"
        ) from None


def _epoch_seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # GitHub's times are UTC
    return moment.timestamp()


def github_token_source(
    settings: Settings,
    clients: ClientFactory,
    *,
    secrets: Secrets | None = None,
    clock: Clock = time.time,
    retry: Retry | None = None,
    seconds_between_writes: float = 1.0,
) -> TokenSource | None:
    """What GitHub is called with, per ``settings``; None when GitHub is not configured.
    The token or private key is read through ``secrets`` (the runtime's, so a warm
    process reads it once), else through a Secrets of its own over ``clients``.

    Settings.from_environ has already refused half an App, and a token and an App together.
    """
    if secrets is None:
        from chalicelib.aws.secrets import Secrets

        secrets = Secrets.over(settings, clients)
    if secrets.github_token.configured:
        return secrets.github_token.current
    s = settings
    if s.github_app_id is None or s.github_app_installation_id is None:
        return None
    if not secrets.github_app_private_key.configured:
        return None
    return InstallationTokens(
        s.github_app_id,
        s.github_app_installation_id,
        secrets.github_app_private_key.current,
        s.github_api_url,
        clock=clock,
        retry=retry,
        seconds_between_writes=seconds_between_writes,
    )
