"""Slack notifications through the real slack-sdk WebClient against the Slack stand-in."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import slugify
from chalicelib.local.standins import StandIns
from chalicelib.notify.dispatcher import NotificationDispatcher
from chalicelib.notify.slack import SlackNotifier, slack_client
from tests.integration.notify_story import drive

REPO = "acme/shop"
BRANCH = "feature/login"
DOMAIN = "preview.example.com"
SHA1 = "1" * 40
SHA2 = "2" * 40
TOKEN = "xoxb-test-slack-token"
LOG_URL = "https://console.aws.amazon.com/codesuite/codebuild/projects/demo/build/1"


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with StandIns(slack_token=TOKEN) as running:
        yield running


def url_for(env: Environment) -> str:
    return f"https://{env.slug}.{DOMAIN}"


def dispatcher(standins: StandIns, channel: str | None = "#previews") -> NotificationDispatcher:
    slack = SlackNotifier(
        lambda: slack_client(TOKEN, standins.slack_api_url), lambda env: channel, url_for
    )
    return NotificationDispatcher(slack, None, None, clock=lambda: 1000.0)


def created(sha: str = SHA1) -> Environment:
    return Environment(
        slug=slugify(BRANCH, DOMAIN),
        repository=REPO,
        branch=BRANCH,
        desired_sha=sha,
        status=Status.BUILDING,
        pusher="dev",
        commit_url=f"https://github.com/{REPO}/commit/{sha}",
    )


def lifecycle() -> list[Environment]:
    """create → ready → push → ready → delete, as converge would persist it."""
    first = created()
    ready1 = replace(first, status=Status.READY, deployed_sha=SHA1, ready_seconds=(74.0,))
    push = replace(
        ready1, status=Status.BUILDING, desired_sha=SHA2, commit_url=f"https://x/commit/{SHA2}"
    )
    ready2 = replace(push, status=Status.READY, deployed_sha=SHA2, ready_seconds=(74.0, 51.0))
    return [
        first,
        replace(first, status=Status.DEPLOYING),
        ready1,
        push,
        replace(push, status=Status.DEPLOYING),
        ready2,
        replace(ready2, status=Status.DELETING),
        replace(ready2, status=Status.DELETED, desired="absent"),
    ]


def record(standins: StandIns) -> dict[str, Any]:
    with urllib.request.urlopen(standins.url + "/_local/slack", timeout=5) as answer:
        data: dict[str, Any] = json.loads(answer.read())
    return data


def set_faults(standins: StandIns, faults: dict[str, Any]) -> None:
    request = urllib.request.Request(
        standins.url + "/_local/faults", data=json.dumps(faults).encode(), method="PUT"
    )
    urllib.request.urlopen(request, timeout=5).close()


def shown(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {
        element["text"]["text"]: element["url"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def test_lifecycle_posts_once_then_updates_in_place_and_threads_the_second_deploy(
    standins: StandIns,
) -> None:
    drive(dispatcher(standins), lifecycle())
    calls = record(standins)["calls"]
    threaded = [(c["method"], bool(c.get("thread_ts"))) for c in calls]
    assert threaded == [
        ("chat.postMessage", False),
        *[("chat.update", False)] * 5,
        ("chat.postMessage", True),
        *[("chat.update", False)] * 2,
    ]
    statuses = [status_in(c["text"]) for c in calls if not c.get("thread_ts")]
    assert statuses == [
        "building",
        "deploying",
        "ready",
        "building",
        "deploying",
        "ready",
        "deleting",
        "deleted",
    ]


def status_in(text: str) -> str:
    """The status word of a message's fallback text, ``branch (repo): status[, url]``."""
    return text.split("): ", 1)[1].split(",")[0]


def test_every_update_targets_the_first_message(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle())
    calls = record(standins)["calls"]
    first_ts = calls[0]["ts"]
    assert {c["ts"] for c in calls if c["method"] == "chat.update"} == {first_ts}
    assert len(record(standins)["messages"]) == 1


def test_the_second_deploy_gets_a_threaded_live_line(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle())
    [message] = record(standins)["messages"]
    assert [r["text"] for r in message["replies"]] == ["2222222 by @dev is live, 51 s"]


def test_ready_message_shows_pusher_commit_link_and_open_preview_button(
    standins: StandIns,
) -> None:
    drive(dispatcher(standins), lifecycle()[:3])
    [message] = record(standins)["messages"]
    assert buttons(message["blocks"]) == {"Open preview": url_for(created())}
    assert "@dev" in shown(message["blocks"])
    assert f"<https://github.com/{REPO}/commit/{SHA1}|`1111111`>" in shown(message["blocks"])
    assert "Ready in 74 s" in shown(message["blocks"])


def test_message_before_ready_has_no_preview_button(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle()[:2])
    [message] = record(standins)["messages"]
    assert buttons(message["blocks"]) == {}


def test_failed_build_shows_the_reason_and_a_log_link(standins: StandIns) -> None:
    failed = replace(
        created(),
        status=Status.FAILED,
        reason="The image build failed: npm ci exited 1.",
        log_url=LOG_URL,
    )
    drive(dispatcher(standins), [created(), failed])
    [message] = record(standins)["messages"]
    assert "npm ci exited 1" in shown(message["blocks"])
    assert buttons(message["blocks"]) == {"Open logs": LOG_URL}


def test_no_token_reaches_a_message_even_inside_a_failure_reason(standins: StandIns) -> None:
    leaked = "ghp_" + "x" * 36
    failed = replace(created(), status=Status.FAILED, reason=f"clone failed with token {leaked}")
    drive(dispatcher(standins), [created(), failed])
    sent = json.dumps(record(standins))
    assert leaked not in sent
    assert TOKEN not in sent


def test_a_repeated_converge_makes_no_slack_call(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    env = drive(notifier, lifecycle()[:3])
    before = len(record(standins)["calls"])
    again = notifier.environment_changed(env)
    assert len(record(standins)["calls"]) == before
    assert again == env


def test_no_channel_means_no_message(standins: StandIns) -> None:
    env = drive(dispatcher(standins, channel=None), lifecycle()[:3])
    assert record(standins)["calls"] == []
    assert "errors" not in env.notifications


def test_a_429_is_retried_after_retry_after_and_delivered(standins: StandIns) -> None:
    set_faults(standins, {"slack": {"rate_limited": 1, "retry_after": 1}})
    started = time.monotonic()
    env = drive(dispatcher(standins), [created()])
    assert time.monotonic() - started >= 1.0
    assert [c["method"] for c in record(standins)["calls"]] == ["chat.postMessage"]
    assert "errors" not in env.notifications


def test_a_429_asking_for_a_long_wait_is_left_to_the_next_converge(standins: StandIns) -> None:
    set_faults(standins, {"slack": {"rate_limited": 1, "retry_after": 60}})
    started = time.monotonic()
    env = drive(dispatcher(standins), [created()])
    assert time.monotonic() - started < 5
    assert "429: ratelimited" in env.notifications["errors"]["slack"]["error"]
    env = dispatcher(standins).environment_changed(
        replace(created(), notifications=env.notifications)
    )
    assert "errors" not in env.notifications
    assert len(record(standins)["messages"]) == 1


def test_slack_down_does_not_raise_and_is_recorded(standins: StandIns) -> None:
    set_faults(standins, {"slack": {"down": True}})
    env = dispatcher(standins).environment_changed(created())
    assert env.notifications["errors"]["slack"]["at"] == 1000.0
    assert "503" in env.notifications["errors"]["slack"]["error"]
    assert TOKEN not in json.dumps(env.notifications)


def test_after_slack_comes_back_the_next_call_catches_up(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    steps = lifecycle()
    set_faults(standins, {"slack": {"down": True}})
    env = drive(notifier, steps[:2])
    set_faults(standins, {"slack": {"down": False}})
    env = notifier.environment_changed(replace(steps[2], notifications=env.notifications))
    [message] = record(standins)["messages"]
    assert "errors" not in env.notifications
    assert buttons(message["blocks"]) == {"Open preview": url_for(created())}


def test_deleted_before_any_message_posts_nothing(standins: StandIns) -> None:
    drive(dispatcher(standins), [replace(created(), status=Status.DELETED)])
    assert record(standins)["calls"] == []


def test_a_branch_created_again_after_deletion_gets_a_new_message(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    env = drive(notifier, lifecycle())
    notifier.environment_changed(replace(created(), notifications=env.notifications))
    messages = record(standins)["messages"]
    assert [status_in(m["text"]) for m in messages] == ["deleted", "building"]


def test_a_spot_interruption_shows_in_the_message() -> None:
    from chalicelib.notify.slack import message_blocks

    env = Environment(
        slug="s",
        repository="o/r",
        branch="b",
        status=Status.READY,
        deployed_sha="1" * 40,
        desired_sha="1" * 40,
        spot_interruptions=2,
    )

    text = json.dumps(message_blocks(env, "https://s.preview.example.com"))

    assert "Spot task interrupted 2 times, replaced by ECS" in text


def failed_redeploy(
    reason: str = "ECS rolled the deployment back: tasks failed to start.",
) -> list[Environment]:
    """sha1 ready; sha2 pushed, ECS failed its deployment and rolled back to sha1."""
    ready1 = lifecycle()[2]
    push = lifecycle()[3]
    failed = replace(push, status=Status.FAILED, reason=reason, log_url=LOG_URL)
    return [*lifecycle()[:2], ready1, push, replace(push, status=Status.DEPLOYING), failed]


def test_a_failed_redeploy_names_the_commit_and_says_the_previous_one_still_serves(
    standins: StandIns,
) -> None:
    drive(dispatcher(standins), failed_redeploy())

    [message] = record(standins)["messages"]
    blocks = shown(message["blocks"])
    url = url_for(created())
    assert "tasks failed to start" in blocks
    assert (
        f"`2222222` was not deployed: the previous commit `1111111` still serves at <{url}|{url}>."
        in blocks
    )
    assert "<https://x/commit/" + SHA2 + "|`2222222`>" in blocks  # the Commit field
    assert buttons(message["blocks"]) == {"Open preview": url, "Open logs": LOG_URL}
    assert message["text"].endswith(f"tasks failed to start. (1111111 still serves at {url})")


def test_a_failure_with_nothing_serving_says_nothing_of_a_previous_commit(
    standins: StandIns,
) -> None:
    first_failed = replace(created(), status=Status.FAILED, reason="ECS: tasks failed to start.")
    same_commit = replace(lifecycle()[2], status=Status.FAILED, reason="stuck in deploying")

    for story in ([created(), first_failed], [*lifecycle()[:3], same_commit]):
        env = drive(dispatcher(standins), story)
        [*_, message] = record(standins)["messages"]
        assert env.deployed_sha in (None, env.desired_sha)
        assert "still serves" not in shown(message["blocks"]) + message["text"]
        assert "Open preview" not in buttons(message["blocks"])


def sleep_and_wake() -> list[Environment]:
    """create → ready → idle: sleeping → a request wakes it: ready again, same commit."""
    ready1 = lifecycle()[2]
    asleep = replace(ready1, status=Status.SLEEPING, asleep=True, slept_at=2000.0)
    return [*lifecycle()[:3], asleep, replace(asleep, status=Status.READY, asleep=False)]


def test_a_sleeping_preview_keeps_its_url_and_says_it_wakes_on_the_first_request(
    standins: StandIns,
) -> None:
    drive(dispatcher(standins), sleep_and_wake()[:4])
    [message] = record(standins)["messages"]
    url = url_for(created())
    assert message["text"] == (f"{BRANCH} ({REPO}): sleeping, wakes on the first request, {url}")
    blocks = shown(message["blocks"])
    assert f":zzz: *{BRANCH}* is sleeping" in blocks
    assert "Sleeping, wakes on the first request" in blocks  # the Status field
    assert f"Opening <{url}|{url}> wakes it" in blocks
    assert buttons(message["blocks"]) == {"Open preview": url}


def test_sleep_and_wake_update_the_message_in_place_and_thread_nothing(
    standins: StandIns,
) -> None:
    drive(dispatcher(standins), sleep_and_wake())
    calls = record(standins)["calls"]
    assert [(c["method"], bool(c.get("thread_ts"))) for c in calls] == [
        ("chat.postMessage", False),
        *[("chat.update", False)] * 4,
    ]
    assert [status_in(c["text"]) for c in calls] == [
        "building",
        "deploying",
        "ready",
        "sleeping",
        "ready",
    ]
    [message] = record(standins)["messages"]
    assert message["replies"] == []  # waking is not a new deploy


def test_no_post_of_branchenv_unfurls_a_link(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    ready2 = lifecycle()[5]
    asleep = replace(ready2, status=Status.SLEEPING, asleep=True)
    drive(notifier, [*lifecycle()[:6], asleep, replace(asleep, status=Status.READY)])
    SlackNotifier(
        lambda: slack_client(TOKEN, standins.slack_api_url), lambda env: "#previews", url_for
    ).alert("#alerts", f"dead letters: see {url_for(created())}")
    posts = [c for c in record(standins)["calls"] if c["method"] == "chat.postMessage"]
    assert [bool(c["thread_ts"]) for c in posts] == [False, True, False]  # message, reply, alert
    assert all(c["unfurl"] == {"unfurl_links": False, "unfurl_media": False} for c in posts)
