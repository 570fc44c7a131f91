"""The dispatcher: every channel on its own, built from settings, never raising."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import names_for
from chalicelib.domain.settings import Settings
from chalicelib.local.standins import StandIns
from chalicelib.notify import NullNotifier
from chalicelib.notify.dispatcher import NotificationDispatcher, notifier_from_settings
from tests.conftest import offline_settings

APP = "demo"
DOMAIN = "preview.example.com"
REPO = "acme/shop"
BRANCH = "feature/login"
SHA = "4" * 40
SLACK_TOKEN = "xoxb-dispatcher-test"
GITHUB_TOKEN = "ghp_dispatchertest000000"
BUS = "branchenv-demo"


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with StandIns(slack_token=SLACK_TOKEN, github_token=GITHUB_TOKEN) as running:
        running.set_branch(REPO, BRANCH, SHA)
        yield running


def settings(**extra: Any) -> Settings:
    return offline_settings(app_name=APP, preview_domain=DOMAIN, **extra)


def stand_in_settings(standins: StandIns, **extra: Any) -> Settings:
    return settings(
        slack_api_url=standins.slack_api_url,
        github_api_url=standins.github_api_url,
        slack_channel="#previews",
        **extra,
    )


def environment(status: Status) -> Environment:
    names = names_for(APP, REPO, BRANCH, DOMAIN)
    return Environment(
        slug=names.slug,
        repository=REPO,
        branch=BRANCH,
        desired_sha=SHA,
        deployed_sha=SHA if status == Status.READY else None,
        status=status,
        pusher="dev",
    )


def local(standins: StandIns, what: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{standins.url}/_local/{what}", timeout=5) as answer:
        data: dict[str, Any] = json.loads(answer.read())
    return data


def put_faults(standins: StandIns, faults: dict[str, Any]) -> None:
    body = json.dumps(faults).encode()
    request = urllib.request.Request(standins.url + "/_local/faults", data=body, method="PUT")
    urllib.request.urlopen(request, timeout=5).close()


def test_nothing_configured_gives_the_null_notifier(clients: ClientFactory) -> None:
    assert isinstance(notifier_from_settings(settings(), clients), NullNotifier)


def test_null_notifier_returns_the_environment_unchanged() -> None:
    env = environment(Status.READY)
    assert NullNotifier().environment_changed(env) is env


def test_from_settings_delivers_to_slack_github_and_the_bus(
    standins: StandIns, clients: ClientFactory
) -> None:
    clients.client("events").create_event_bus(Name=BUS)
    notifier = notifier_from_settings(
        stand_in_settings(
            standins, slack_token=SLACK_TOKEN, github_token=GITHUB_TOKEN, event_bus=BUS
        ),
        clients,
        github_write_pause=0,
    )
    env = notifier.environment_changed(environment(Status.READY))
    [message] = local(standins, "slack")["messages"]
    [deployment] = local(standins, "github")["deployments"]
    expected_url = f"https://{env.slug}.{DOMAIN}"
    assert expected_url in json.dumps(message["blocks"])
    assert deployment["statuses"][-1]["environment_url"] == expected_url
    assert set(env.notifications) == {"slack", "github", "events"}


def test_tokens_are_read_from_secrets_manager_arns(
    standins: StandIns, clients: ClientFactory
) -> None:
    secrets = clients.client("secretsmanager")
    slack_arn = secrets.create_secret(Name="slack", SecretString=SLACK_TOKEN)["ARN"]
    github_arn = secrets.create_secret(Name="github", SecretString=GITHUB_TOKEN)["ARN"]
    notifier = notifier_from_settings(
        stand_in_settings(standins, slack_token_arn=slack_arn, github_token_arn=github_arn),
        clients,
        github_write_pause=0,
    )
    env = notifier.environment_changed(environment(Status.BUILDING))
    assert "errors" not in env.notifications
    assert len(local(standins, "slack")["messages"]) == 1
    assert len(local(standins, "github")["deployments"]) == 1


def test_a_missing_secret_is_a_recorded_failure(standins: StandIns, clients: ClientFactory) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"
    notifier = notifier_from_settings(stand_in_settings(standins, slack_token_arn=missing), clients)
    env = notifier.environment_changed(environment(Status.BUILDING))
    assert "ResourceNotFoundException" in env.notifications["errors"]["slack"]["error"]


def test_github_down_does_not_stop_slack(standins: StandIns, clients: ClientFactory) -> None:
    put_faults(standins, {"github": {"down": True}})
    notifier = notifier_from_settings(
        stand_in_settings(standins, slack_token=SLACK_TOKEN, github_token=GITHUB_TOKEN),
        clients,
        github_write_pause=0,
    )
    env = notifier.environment_changed(environment(Status.BUILDING))
    assert set(env.notifications["errors"]) == {"github"}
    assert len(local(standins, "slack")["messages"]) == 1


def test_everything_down_still_returns_and_the_next_converge_catches_up(
    standins: StandIns, clients: ClientFactory
) -> None:
    put_faults(standins, {"github": {"down": True}, "slack": {"down": True}})
    notifier = notifier_from_settings(
        stand_in_settings(standins, slack_token=SLACK_TOKEN, github_token=GITHUB_TOKEN),
        clients,
        github_write_pause=0,
    )
    env = notifier.environment_changed(environment(Status.BUILDING))
    assert set(env.notifications["errors"]) == {"slack", "github"}
    put_faults(standins, {"github": {"down": False}, "slack": {"down": False}})
    ready = replace(environment(Status.READY), notifications=env.notifications)
    env = notifier.environment_changed(ready)
    assert "errors" not in env.notifications
    [deployment] = local(standins, "github")["deployments"]
    assert [s["state"] for s in deployment["statuses"]] == ["success"]
    assert "Open preview" in json.dumps(local(standins, "slack")["messages"][0]["blocks"])


def test_a_channel_that_raises_anything_is_contained() -> None:
    class Broken:
        name = "slack"

        def sync(self, env: Environment, state: dict[str, Any]) -> None:
            state["ts"] = "1.000001"  # progress made before the failure is kept
            raise RuntimeError("token xoxb-should-not-appear failed")

    dispatcher = NotificationDispatcher(Broken(), None, None, clock=lambda: 5.0)  # type: ignore[arg-type]
    env = dispatcher.environment_changed(environment(Status.BUILDING))
    assert env.notifications["slack"] == {"ts": "1.000001"}
    assert env.notifications["errors"]["slack"]["at"] == 5.0
    assert "xoxb-should-not-appear" not in json.dumps(env.notifications)


def test_importing_notify_loads_neither_slack_sdk_nor_pygithub() -> None:
    code = (
        "import sys, chalicelib.notify, chalicelib.notify.dispatcher, "
        "chalicelib.notify.slack, chalicelib.notify.github; "
        "print(sorted(m for m in ('slack_sdk', 'github') if m in sys.modules))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "[]"
