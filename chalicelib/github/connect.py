"""The one place an installation's GitHub gateway is built from its settings.

The runtime builds it once and hands it to the reaper, converge (branchenv.yml) and the
deployments notification channel, so a warm process keeps one client and one GitHub App
installation token. Pacing follows GitHub's advice for the real API ("Best practices for
using the REST API": pause between requests, at least a second between writes) and is
off for a stand-in on loopback (the local stack).

Must never: import PyGithub at module import time; read a secret before the first call.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chalicelib.github.auth import Clock, github_token_source
from chalicelib.github.gateway import GitHubGateway

if TYPE_CHECKING:
    from urllib3.util.retry import Retry

    from chalicelib.aws.clients import ClientFactory
    from chalicelib.aws.secrets import Secrets
    from chalicelib.domain.settings import Settings

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def github_pauses(api_url: str, write_pause: float | None = None) -> tuple[float, float]:
    """PyGithub's pauses (between requests, between writes): GitHub's pacing advice for
    the real API, none for a stand-in on loopback, unless ``write_pause`` says otherwise."""
    loopback = urlsplit(api_url).hostname in LOOPBACK
    if write_pause is None:
        write_pause = 0.0 if loopback else 1.0
    return (0.0 if loopback else 0.25), write_pause


def gateway_from_settings(
    settings: Settings,
    clients: ClientFactory,
    *,
    secrets: Secrets | None = None,
    clock: Clock = time.time,
    write_pause: float | None = None,
    retry: Retry | None = None,
) -> GitHubGateway | None:
    """GitHub's REST API for the installation ``settings`` describe, reached with the
    token or GitHub App they name (read through ``secrets``); None when neither is set."""
    read_pause, write_pause = github_pauses(settings.github_api_url, write_pause)
    token = github_token_source(
        settings,
        clients,
        secrets=secrets,
        clock=clock,
        retry=retry,
        seconds_between_writes=write_pause,
    )
    if token is None:
        return None
    return GitHubGateway(
        token,
        settings.github_api_url,
        retry=retry,
        seconds_between_requests=read_pause,
        seconds_between_writes=write_pause,
    )
