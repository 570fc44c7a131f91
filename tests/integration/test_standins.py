"""The Slack and GitHub stand-ins: real clients over HTTP, what they check, local controls."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from github import Auth, Github, GithubException
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from chalicelib.local.standins import StandIns

REPO = "acme/shop"
SHA = "a" * 40
SLACK_TOKEN = "xoxb-local-test-token"
GITHUB_TOKEN = "ghp_localtesttoken0000"


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with StandIns(slack_token=SLACK_TOKEN, github_token=GITHUB_TOKEN) as running:
        running.set_branch(REPO, "main", SHA)
        yield running


def call(standins: StandIns, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(standins.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def slack(standins: StandIns, token: str | None = SLACK_TOKEN) -> WebClient:
    return WebClient(token=token, base_url=standins.slack_api_url)


def github(standins: StandIns, token: str = GITHUB_TOKEN) -> Github:
    return Github(
        base_url=standins.github_api_url,
        auth=Auth.Token(token),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def test_slack_auth_test_answers_with_the_bot_identity(standins: StandIns) -> None:
    assert slack(standins).auth_test()["user_id"] == "U0BRANCHENV"


def test_slack_refuses_a_call_without_a_token(standins: StandIns) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack(standins, token=None).chat_postMessage(channel="#qa", text="hi")
    assert exc.value.response["error"] == "not_authed"


def test_slack_refuses_a_wrong_token(standins: StandIns) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack(standins, token="xoxb-wrong").chat_postMessage(channel="#qa", text="hi")
    assert exc.value.response["error"] == "invalid_auth"


def test_slack_requires_a_channel(standins: StandIns) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack(standins).chat_postMessage(channel="", text="hi")
    assert exc.value.response["error"] == "channel_not_found"


def test_slack_rejects_blocks_that_are_not_json(standins: StandIns) -> None:
    with pytest.raises(SlackApiError) as exc:
        slack(standins).api_call(
            "chat.postMessage", data={"channel": "#qa", "text": "hi", "blocks": "[{not json"}
        )
    assert exc.value.response["error"] == "invalid_blocks_format"


def test_slack_update_of_an_unknown_ts_is_message_not_found(standins: StandIns) -> None:
    client = slack(standins)
    channel = client.chat_postMessage(channel="#qa", text="first")["channel"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel=channel, ts="1.000999", text="changed")
    assert exc.value.response["error"] == "message_not_found"


def test_slack_records_a_post_its_update_and_a_threaded_reply(standins: StandIns) -> None:
    client = slack(standins)
    posted = client.chat_postMessage(channel="#qa", text="building", blocks=[{"type": "divider"}])
    client.chat_update(channel=posted["channel"], ts=posted["ts"], text="ready")
    client.chat_postMessage(channel=posted["channel"], thread_ts=posted["ts"], text="live")
    status, record = call(standins, "GET", "/_local/slack")
    assert status == 200
    assert [m["text"] for m in record["messages"]] == ["ready"]
    assert [r["text"] for r in record["messages"][0]["replies"]] == ["live"]
    assert [c["method"] for c in record["calls"]] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
    ]


def test_slack_rate_limit_fault_answers_429_with_retry_after(standins: StandIns) -> None:
    call(standins, "PUT", "/_local/faults", {"slack": {"rate_limited": 1, "retry_after": 3}})
    with pytest.raises(SlackApiError) as exc:
        slack(standins).chat_postMessage(channel="#qa", text="hi")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "3"


def test_ecs_fail_shas_are_set_shown_and_cleared(standins: StandIns) -> None:
    status, shown = call(standins, "PUT", "/_local/faults", {"ecs": {"fail_shas": [SHA]}})
    assert (status, shown["ecs"]) == (200, {"fail_shas": [SHA]})
    assert standins.faults.ecs_fail_shas == {SHA}

    status, shown = call(standins, "PUT", "/_local/faults", {"ecs": {"fail_shas": []}})
    assert (status, shown["ecs"]) == (200, {"fail_shas": []})
    assert call(standins, "GET", "/_local/faults")[1]["ecs"] == {"fail_shas": []}


@pytest.mark.parametrize(
    ("ecs", "names"),
    [
        ({"fail_shas": ["abc123"]}, "fail_shas[0]"),
        ({"fail_shas": [SHA.upper()]}, "fail_shas[0]"),
        ({"fail_shas": [SHA, 7]}, "fail_shas[1]"),
        ({"fail_shas": SHA}, "must be a list"),
        ({"fail_sha": [SHA]}, "fail_shas"),
        ({}, "fail_shas"),
        ([SHA], "fail_shas"),
    ],
)
def test_ecs_fail_shas_refuse_anything_but_a_list_of_full_shas(
    standins: StandIns, ecs: Any, names: str
) -> None:
    status, answer = call(standins, "PUT", "/_local/faults", {"slack": {"down": True}, "ecs": ecs})

    assert status == 400
    assert names in answer["error"]
    assert "40-hex" in answer["error"]
    assert standins.faults.slack_down is False  # nothing of a refused body is applied
    assert standins.faults.ecs_fail_shas == frozenset()


def test_github_reads_a_branch_with_pygithub(standins: StandIns) -> None:
    assert github(standins).get_repo(REPO).get_branch("main").commit.sha == SHA


def test_github_branch_names_with_slashes_are_found(standins: StandIns) -> None:
    standins.set_branch(REPO, "feature/login", "b" * 40)
    assert github(standins).get_repo(REPO).get_branch("feature/login").commit.sha == "b" * 40


def test_github_refuses_bad_credentials(standins: StandIns) -> None:
    with pytest.raises(GithubException) as exc:
        github(standins, token="ghp_wrong").get_repo(REPO)
    assert exc.value.status == 401


def test_github_requires_an_authorization_header(standins: StandIns) -> None:
    status, answer = call(standins, "GET", f"/github/repos/{REPO}")
    assert status == 401
    assert answer["message"] == "Requires authentication"


def test_github_unknown_repository_is_404(standins: StandIns) -> None:
    with pytest.raises(GithubException) as exc:
        github(standins).get_repo("acme/nothing")
    assert exc.value.status == 404


def test_github_lists_branches_across_pages(standins: StandIns) -> None:
    for number in range(7):
        standins.set_branch(REPO, f"b{number}", f"{number:040x}")
    client = Github(
        base_url=standins.github_api_url,
        auth=Auth.Token(GITHUB_TOKEN),
        per_page=3,
        seconds_between_requests=0,
    )
    names = [b.name for b in client.get_repo(REPO).get_branches()]
    assert sorted(names) == sorted([*(f"b{n}" for n in range(7)), "main"])


def test_github_deployment_for_an_unknown_ref_is_422(standins: StandIns) -> None:
    with pytest.raises(GithubException) as exc:
        github(standins).get_repo(REPO).create_deployment(ref="c" * 40, required_contexts=[])
    assert exc.value.status == 422


def test_github_status_for_an_unknown_deployment_is_404(standins: StandIns) -> None:
    repo = github(standins).get_repo(REPO)
    with pytest.raises(GithubException) as exc:
        repo.get_deployment(999).create_status("success")
    assert exc.value.status == 404


def test_github_status_with_a_state_github_does_not_know_is_422(standins: StandIns) -> None:
    repo = github(standins).get_repo(REPO)
    deployment = repo.create_deployment(ref=SHA, environment="preview/main", required_contexts=[])
    with pytest.raises(GithubException) as exc:
        deployment.create_status("done")
    assert exc.value.status == 422


def test_github_records_deployments_and_statuses(standins: StandIns) -> None:
    repo = github(standins).get_repo(REPO)
    deployment = repo.create_deployment(
        ref=SHA, environment="preview/main", transient_environment=True, required_contexts=[]
    )
    deployment.create_status("success", environment_url="https://main.preview.example.com")
    assert [s.state for s in deployment.get_statuses()] == ["success"]
    _, record = call(standins, "GET", "/_local/github")
    [recorded] = record["deployments"]
    assert recorded["environment"] == "preview/main"
    assert recorded["sha"] == SHA
    assert recorded["statuses"][0]["environment_url"] == "https://main.preview.example.com"


def test_github_down_fault_answers_503(standins: StandIns) -> None:
    call(standins, "PUT", "/_local/faults", {"github": {"down": True}})
    with pytest.raises(GithubException) as exc:
        github(standins).get_repo(REPO)
    assert exc.value.status == 503


def test_branch_controls_set_and_delete_what_github_reports(standins: StandIns) -> None:
    body = {"repository": REPO, "branch": "topic", "sha": "d" * 40}
    assert call(standins, "PUT", "/_local/github/branches", body)[0] == 200
    assert github(standins).get_repo(REPO).get_branch("topic").commit.sha == "d" * 40
    assert call(standins, "DELETE", "/_local/github/branches", body)[1]["deleted"] is True
    with pytest.raises(GithubException) as exc:
        github(standins).get_repo(REPO).get_branch("topic")
    assert exc.value.status == 404


def test_branch_control_rejects_a_short_sha(standins: StandIns) -> None:
    body = {"repository": REPO, "branch": "topic", "sha": "abc"}
    status, answer = call(standins, "PUT", "/_local/github/branches", body)
    assert status == 400
    assert "sha" in answer["error"]


def test_file_control_serves_contents_through_pygithub(standins: StandIns) -> None:
    body = {"repository": REPO, "path": ".branchenv.yml", "content": "port: 3000\n"}
    assert call(standins, "PUT", "/_local/github/files", body)[0] == 200
    found = github(standins).get_repo(REPO).get_contents(".branchenv.yml", ref="main")
    assert not isinstance(found, list)
    assert found.decoded_content == b"port: 3000\n"


def test_reap_without_a_reaper_is_501(standins: StandIns) -> None:
    status, answer = call(standins, "POST", "/_local/reap")
    assert status == 501
    assert "reaper" in answer["error"]


def test_reap_runs_the_hook_and_returns_its_answer() -> None:
    with StandIns(reap=lambda: {"deleted": ["old-branch"]}) as running:
        assert call(running, "POST", "/_local/reap") == (200, {"deleted": ["old-branch"]})


def test_stop_frees_the_port_and_the_thread() -> None:
    running = StandIns().start()
    port = running.port
    running.stop()
    assert not any(t.name == "branchenv-standins" for t in threading.enumerate())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
