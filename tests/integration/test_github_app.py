"""GitHub App credentials: real PyGithub mints installation tokens from the GitHub stand-in
(which checks the App's RS256 JWT) and uses them for deployments; tokens are reused while
valid and renewed before they expire; a bad key is a logged, non-fatal notification
failure. The RSA key is generated here, at test time; none is committed."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException, GithubIntegration

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.settings import Settings
from chalicelib.github.auth import github_token_source
from chalicelib.github.gateway import GitHubError, GitHubGateway, github_retry
from chalicelib.local.standins import StandInApp, StandIns
from chalicelib.notify.dispatcher import notifier_from_settings
from chalicelib.runtime import Runtime
from tests.conftest import offline_settings
from tests.integration.test_notify_github import (
    BRANCH,
    REPO,
    SHA1,
    SHA2,
    created,
    lifecycle,
    states,
)

APP_ID = 424242
INSTALLATION_ID = 777
HOUR = 3600.0


class Clock:
    """A clock the test moves by hand, shared by branchenv and the stand-in."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pem_of(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def public_pem_of(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> Clock:
    return Clock(1_900_000_000.0)


@pytest.fixture
def standins(app_key: rsa.RSAPrivateKey, clock: Clock) -> Iterator[StandIns]:
    app = StandInApp(APP_ID, frozenset({INSTALLATION_ID}), public_pem_of(app_key))
    with StandIns(github_app=app, clock=clock) as running:
        running.set_branch(REPO, BRANCH, SHA1)
        running.set_branch(REPO, BRANCH, SHA2)
        yield running


def app_settings(standins: StandIns, **github: Any) -> Settings:
    return offline_settings(
        github_api_url=standins.github_api_url,
        github_app_id=APP_ID,
        github_app_installation_id=INSTALLATION_ID,
        **github,
    )


def gateway(settings: Settings, clock: Clock) -> GitHubGateway:
    source = github_token_source(
        settings, ClientFactory("us-east-1"), clock=clock, seconds_between_writes=0
    )
    assert source is not None
    return GitHubGateway(
        source,
        settings.github_api_url,
        retry=github_retry(total=0),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def record(standins: StandIns) -> dict[str, Any]:
    with urllib.request.urlopen(standins.url + "/_local/github", timeout=5) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


def minted(standins: StandIns) -> int:
    return len(record(standins)["installation_tokens"])


def drive_notifier(settings: Settings, clients: ClientFactory, clock: Clock) -> dict[str, Any]:
    notifier = notifier_from_settings(settings, clients, clock=clock, github_write_pause=0)
    notes: dict[str, Any] = {}
    for env in lifecycle():
        notes = notifier.environment_changed(replace(env, notifications=notes)).notifications
    return notes


def test_deployments_are_created_with_a_local_app_key(
    standins: StandIns, app_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    settings = app_settings(standins, github_app_private_key=pem_of(app_key))
    notes = drive_notifier(settings, ClientFactory("us-east-1"), clock)
    first, second = record(standins)["deployments"]
    assert (first["sha"], states(first)) == (SHA1, ["in_progress", "success", "inactive"])
    assert (second["sha"], states(second)) == (SHA2, ["in_progress", "success", "inactive"])
    assert "errors" not in notes


def test_deployments_are_created_with_the_app_key_from_secrets_manager(
    standins: StandIns, app_key: rsa.RSAPrivateKey, clock: Clock, clients: ClientFactory
) -> None:
    arn = clients.client("secretsmanager").create_secret(
        Name="demo/github-app-private-key", SecretString=pem_of(app_key)
    )["ARN"]
    settings = app_settings(standins, github_app_private_key_arn=arn)
    drive_notifier(settings, clients, clock)
    assert len(record(standins)["deployments"]) == 2
    assert record(standins)["installation_tokens"] == [
        {"installation_id": INSTALLATION_ID, "expires_at": "2030-03-17T18:46:40Z"}
    ]


def test_an_installation_token_is_reused_while_it_is_valid(
    standins: StandIns, app_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    github = gateway(app_settings(standins, github_app_private_key=pem_of(app_key)), clock)
    for _ in range(3):
        assert github.branch_head(REPO, BRANCH) == SHA2
        clock.advance(15 * 60)
    assert minted(standins) == 1


def test_an_installation_token_is_renewed_a_few_minutes_before_it_expires(
    standins: StandIns, app_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    github = gateway(app_settings(standins, github_app_private_key=pem_of(app_key)), clock)
    github.branch_head(REPO, BRANCH)
    clock.advance(HOUR - 120)  # still valid for two minutes: too close to rely on
    assert github.branch_head(REPO, BRANCH) == SHA2
    assert minted(standins) == 2


def test_after_expiry_the_gateway_keeps_working_with_a_new_token(
    standins: StandIns, app_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    github = gateway(app_settings(standins, github_app_private_key=pem_of(app_key)), clock)
    github.branch_head(REPO, BRANCH)
    clock.advance(2 * HOUR)  # the stand-in now refuses the first token, as GitHub would
    assert github.list_branches(REPO) == {BRANCH: SHA2}
    assert minted(standins) == 2


def test_the_runtime_gateway_and_its_notifier_share_one_installation_token(
    standins: StandIns, app_key: rsa.RSAPrivateKey
) -> None:
    runtime = Runtime(
        app_settings(standins, github_app_private_key=pem_of(app_key)), ClientFactory("us-east-1")
    )
    assert runtime.github is not None
    assert runtime.github.branch_head(REPO, BRANCH) == SHA2
    env = runtime.notifier.environment_changed(created())
    assert "errors" not in env.notifications
    assert len(record(standins)["deployments"]) == 1
    assert minted(standins) == 1


def test_a_key_that_is_not_the_apps_is_a_logged_notification_failure(
    standins: StandIns,
    other_key: rsa.RSAPrivateKey,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = pem_of(other_key)
    settings = app_settings(standins, github_app_private_key=key)
    notifier = notifier_from_settings(
        settings, ClientFactory("us-east-1"), clock=clock, github_write_pause=0
    )
    with caplog.at_level(logging.WARNING):
        env = notifier.environment_changed(created())
    error = env.notifications["errors"]["github"]["error"]
    assert "GitHub refused an installation token" in error
    assert "401" in error
    assert "github notification" in caplog.text
    assert_no_key_material(key, caplog.text + json.dumps(env.notifications))
    assert record(standins)["deployments"] == []


def test_a_key_that_cannot_sign_is_a_logged_notification_failure(
    standins: StandIns, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END RSA PRIVATE KEY-----\n"
    )
    settings = app_settings(standins, github_app_private_key=key)
    notifier = notifier_from_settings(
        settings, ClientFactory("us-east-1"), clock=clock, github_write_pause=0
    )
    with caplog.at_level(logging.WARNING):
        env = notifier.environment_changed(created())
    assert "private key cannot sign a JWT" in env.notifications["errors"]["github"]["error"]
    assert "github notification" in caplog.text
    assert_no_key_material(key, caplog.text + json.dumps(env.notifications))
    assert minted(standins) == 0


def test_the_gateway_raises_github_error_with_the_status_for_a_bad_key(
    standins: StandIns, other_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    github = gateway(app_settings(standins, github_app_private_key=pem_of(other_key)), clock)
    with pytest.raises(GitHubError) as exc:
        github.branch_head(REPO, BRANCH)
    assert exc.value.status == 401


def assert_no_key_material(key: str, text: str) -> None:
    assert "PRIVATE KEY" not in text
    for line in key.splitlines()[1:-1]:
        assert line not in text


# The stand-in's side, with PyGithub's own GithubIntegration -------------------------


def integration(standins: StandIns, key: rsa.RSAPrivateKey, app_id: int = APP_ID) -> Any:
    return GithubIntegration(
        auth=Auth.AppAuth(str(app_id), pem_of(key)),
        base_url=standins.github_api_url,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def repo_github(standins: StandIns, token: str) -> Github:
    return Github(
        base_url=standins.github_api_url,
        auth=Auth.Token(token),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def test_stand_in_mints_a_token_its_other_endpoints_accept(
    standins: StandIns, app_key: rsa.RSAPrivateKey
) -> None:
    authorization = integration(standins, app_key).get_access_token(INSTALLATION_ID)
    assert authorization.token.startswith("ghs_")
    assert authorization.expires_at.timestamp() == 1_900_000_000.0 + HOUR
    branch = repo_github(standins, authorization.token).get_repo(REPO).get_branch(BRANCH)
    assert branch.commit.sha == SHA2


def test_stand_in_refuses_an_expired_installation_token(
    standins: StandIns, app_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    token = integration(standins, app_key).get_access_token(INSTALLATION_ID).token
    clock.advance(HOUR)
    with pytest.raises(GithubException) as exc:
        repo_github(standins, token).get_repo(REPO).get_branch(BRANCH)
    assert exc.value.status == 401


def test_stand_in_refuses_a_jwt_signed_with_another_key(
    standins: StandIns, other_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(GithubException) as exc:
        integration(standins, other_key).get_access_token(INSTALLATION_ID)
    assert exc.value.status == 401
    assert exc.value.data["message"] == "A JSON web token could not be decoded"


def test_stand_in_refuses_a_jwt_of_another_app(
    standins: StandIns, app_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(GithubException) as exc:
        integration(standins, app_key, app_id=1).get_access_token(INSTALLATION_ID)
    assert exc.value.status == 401
    assert exc.value.data["message"] == "Integration not found"


def test_stand_in_answers_404_for_an_unknown_installation(
    standins: StandIns, app_key: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(GithubException) as exc:
        integration(standins, app_key).get_access_token(INSTALLATION_ID + 1)
    assert exc.value.status == 404


def test_stand_in_refuses_a_token_instead_of_a_jwt(standins: StandIns) -> None:
    request = urllib.request.Request(
        f"{standins.github_api_url}/app/installations/{INSTALLATION_ID}/access_tokens",
        data=b"{}",
        method="POST",
        headers={"Authorization": "token ghp_notajwt"},
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=5)
    assert exc.value.code == 401


def test_stand_in_with_an_app_refuses_unknown_tokens(standins: StandIns) -> None:
    with pytest.raises(GithubException) as exc:
        repo_github(standins, "ghs_madeup").get_repo(REPO).get_branch(BRANCH)
    assert exc.value.status == 401
