"""An environment's names are read from its record: the dashboard, Slack and GitHub name the
host its routing rule and DNS record were made for, even when the branch the record holds
would slugify to another one.

The reaper's tombstone (chalicelib/handlers/reaper.py ``_tombstone``) is such a record: made
for leftovers whose environment branchenv has no record of, it knows only their slug
(``feature-login-48fad082``, from their ``branchenv:env`` tag) and writes it as the branch
too. Slugified again, that "branch" looks like a hashed slug and would be hashed once more
(``feature-login-48fad082-2e9d7dc2``): a host nothing was ever made for.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore, Status
from chalicelib.domain.names import names_for
from chalicelib.handlers.dashboard import Access, Dashboard, Request, render_page
from chalicelib.local.standins import StandIns
from chalicelib.notify.dispatcher import notifier_from_settings
from tests.conftest import offline_settings

APP = "demo"
DOMAIN = "preview.example.com"
REPO = "acme/shop"
SLUG = "feature-login-48fad082"
SHA = "5" * 40
NOW = 1_790_000_000.0
SLACK_TOKEN = "xoxb-names-test"
GITHUB_TOKEN = "ghp_namestest0000000000"
HOST = f"https://{SLUG}.{DOMAIN}"
WRONG_HOST = f"{SLUG}-2e9d7dc2.{DOMAIN}"


def tombstone() -> Environment:
    """The record the reaper writes for leftovers tagged ``branchenv:env=<SLUG>``."""
    return Environment(
        slug=SLUG,
        repository="(unknown)",
        branch=SLUG,
        desired="absent",
        status=Status.DELETING,
        reason="resources left by an environment branchenv had no record of",
        created_at=NOW - 60,
        updated_at=NOW - 60,
    )


def serving() -> Environment:
    """The tombstone's names on a record that serves: Slack and GitHub name a host only for a
    preview that serves (and GitHub needs a real repository), so this is how they would meet
    a record whose branch is its hashed-looking slug."""
    return replace(
        tombstone(),
        repository=REPO,
        desired="present",
        desired_sha=SHA,
        deployed_sha=SHA,
        status=Status.READY,
        reason=None,
        ready_at=NOW - 30,
    )


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with StandIns(slack_token=SLACK_TOKEN, github_token=GITHUB_TOKEN) as running:
        running.set_branch(REPO, SLUG, SHA)
        yield running


def local(standins: StandIns, what: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{standins.url}/_local/{what}", timeout=5) as answer:
        data: dict[str, Any] = json.loads(answer.read())
    return data


def test_the_branch_of_a_tombstone_would_name_another_host() -> None:
    assert f"{names_for(APP, REPO, SLUG, DOMAIN).slug}.{DOMAIN}" == WRONG_HOST


@pytest.mark.parametrize("record", [tombstone(), serving()], ids=["tombstone", "serving"])
def test_the_dashboard_names_the_host_of_the_record(record: Environment) -> None:
    settings = offline_settings(app_name=APP, preview_domain=DOMAIN, dashboard_auth="none")
    store = InMemoryEnvironmentStore()
    store.put(record)
    dashboard = Dashboard(store, settings, Access("none", lambda: ()), clock=lambda: NOW)

    [listed] = json.loads(dashboard.environments(Request()).body)["environments"]
    page = render_page([record], settings, NOW)

    assert listed["url"] == HOST
    assert f'href="{HOST}"' in page
    assert WRONG_HOST not in page


def test_slack_and_github_name_the_host_of_the_record(
    standins: StandIns, clients: ClientFactory
) -> None:
    settings = offline_settings(
        app_name=APP,
        preview_domain=DOMAIN,
        slack_token=SLACK_TOKEN,
        github_token=GITHUB_TOKEN,
        slack_api_url=standins.slack_api_url,
        github_api_url=standins.github_api_url,
        slack_channel="#previews",
    )
    notifier = notifier_from_settings(settings, clients, github_write_pause=0)

    env = notifier.environment_changed(serving())

    assert "errors" not in env.notifications
    [message] = local(standins, "slack")["messages"]
    [deployment] = local(standins, "github")["deployments"]
    assert HOST in json.dumps(message["blocks"])
    assert WRONG_HOST not in json.dumps(message)
    assert [s["environment_url"] for s in deployment["statuses"]] == [HOST]
