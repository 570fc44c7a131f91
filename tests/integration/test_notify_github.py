"""GitHub: the gateway and the deployments channel, through real PyGithub against the
GitHub stand-in."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import slugify
from chalicelib.github.gateway import GitHubError, GitHubGateway, github_retry
from chalicelib.local.standins import StandIns
from chalicelib.notify.dispatcher import NotificationDispatcher
from chalicelib.notify.github import GitHubDeployments
from tests.integration.notify_story import drive

REPO = "acme/shop"
BRANCH = "feature/login"
DOMAIN = "preview.example.com"
SHA1 = "1" * 40
SHA2 = "2" * 40
SHA3 = "3" * 40
TOKEN = "ghp_testtoken000000000000"
LOG_URL = "https://console.aws.amazon.com/codesuite/codebuild/projects/demo/build/1"


@pytest.fixture
def standins() -> Iterator[StandIns]:
    with StandIns(github_token=TOKEN) as running:
        running.set_branch(REPO, BRANCH, SHA1)
        running.set_branch(REPO, BRANCH, SHA3)
        running.set_branch(REPO, BRANCH, SHA2)  # every sha is a known commit of the repo
        running.set_branch(REPO, "main", "0" * 40)
        yield running


def gateway(standins: StandIns, token: str = TOKEN) -> GitHubGateway:
    return GitHubGateway(
        token,
        standins.github_api_url,
        retry=github_retry(total=2, backoff_factor=0.01, secondary_rate_wait=1),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def url_for(env: Environment) -> str:
    return f"https://{env.slug}.{DOMAIN}"


def dispatcher(standins: StandIns) -> NotificationDispatcher:
    return NotificationDispatcher(
        None, GitHubDeployments(gateway(standins), url_for), None, clock=lambda: 1000.0
    )


def created(sha: str = SHA1) -> Environment:
    return Environment(
        slug=slugify(BRANCH, DOMAIN),
        repository=REPO,
        branch=BRANCH,
        desired_sha=sha,
        status=Status.BUILDING,
        pusher="dev",
    )


def lifecycle() -> list[Environment]:
    first = created()
    ready1 = replace(first, status=Status.READY, deployed_sha=SHA1)
    push = replace(ready1, status=Status.BUILDING, desired_sha=SHA2)
    ready2 = replace(push, status=Status.READY, deployed_sha=SHA2)
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


def deployments(standins: StandIns) -> list[dict[str, Any]]:
    with urllib.request.urlopen(standins.url + "/_local/github", timeout=5) as answer:
        found: list[dict[str, Any]] = json.loads(answer.read())["deployments"]
    return found


def states(deployment: dict[str, Any]) -> list[str]:
    return [s["state"] for s in deployment["statuses"]]


def set_github_down(standins: StandIns, down: bool) -> None:
    body = json.dumps({"github": {"down": down}}).encode()
    request = urllib.request.Request(standins.url + "/_local/faults", data=body, method="PUT")
    urllib.request.urlopen(request, timeout=5).close()


def test_lifecycle_gives_each_sha_a_deployment_that_ends_inactive(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle())
    first, second = deployments(standins)
    assert (first["sha"], states(first)) == (SHA1, ["in_progress", "success", "inactive"])
    assert (second["sha"], states(second)) == (SHA2, ["in_progress", "success", "inactive"])


def test_a_newer_success_marks_the_older_deployment_inactive(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    env = drive(notifier, lifecycle()[:6])  # sha1 ready, then sha2 ready
    first, second = deployments(standins)
    assert (first["sha"], states(first)) == (SHA1, ["in_progress", "success", "inactive"])
    assert first["statuses"][-1]["description"] == "Replaced by the preview of 2222222."
    assert (second["sha"], states(second)) == (SHA2, ["in_progress", "success"])

    assert notifier.environment_changed(env) == env  # a repeated converge adds nothing
    assert [states(d) for d in deployments(standins)] == [states(first), states(second)]


def failed_redeploy(reason: str) -> list[Environment]:
    """sha1 ready; sha2 pushed, ECS failed its deployment and rolled back to sha1."""
    ready1 = lifecycle()[2]
    push = replace(ready1, status=Status.BUILDING, desired_sha=SHA2)
    failed = replace(push, status=Status.FAILED, reason=reason, log_url=LOG_URL)
    return [*lifecycle()[:3], push, replace(push, status=Status.DEPLOYING), failed]


def test_a_failed_redeploy_fails_its_own_deployment_and_the_previous_stays_success(
    standins: StandIns,
) -> None:
    reason = (
        "ECS rolled the deployment of 2222222 back: ECS deployment circuit breaker: tasks "
        "failed to start. The previous commit still serves; fix the failure and push again."
    )
    assert len(reason) > 140

    drive(dispatcher(standins), failed_redeploy(reason))

    first, second = deployments(standins)
    assert (first["sha"], states(first)) == (SHA1, ["in_progress", "success"])
    assert (second["sha"], states(second)) == (SHA2, ["in_progress", "failure"])
    description = second["statuses"][-1]["description"]
    assert len(description) == 140  # GitHub refuses longer (the stand-in too)
    assert description == reason[:139] + "…"
    assert second["statuses"][-1]["log_url"] == LOG_URL


def test_a_success_after_a_failed_redeploy_retires_only_the_one_that_served(
    standins: StandIns,
) -> None:
    story = failed_redeploy("ECS rolled the deployment back.")
    fixed = replace(story[-1], status=Status.READY, desired_sha=SHA3, deployed_sha=SHA3)
    drive(dispatcher(standins), [*story, replace(fixed, status=Status.BUILDING), fixed])

    first, second, third = deployments(standins)
    assert states(first) == ["in_progress", "success", "inactive"]
    assert states(second) == ["in_progress", "failure"]  # as GitHub's auto_inactive would
    assert states(third) == ["in_progress", "success"]


def test_deployments_are_transient_previews_of_the_branch(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle()[:1])
    [deployment] = deployments(standins)
    assert deployment["environment"] == f"preview/{BRANCH}"
    assert deployment["transient_environment"] is True
    assert deployment["production_environment"] is False
    assert deployment["auto_merge"] is False
    assert deployment["required_contexts"] == []


def test_success_carries_the_preview_url(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle()[:3])
    [deployment] = deployments(standins)
    assert deployment["statuses"][-1]["environment_url"] == url_for(created())


def test_failed_build_ends_in_failure_with_the_log_url(standins: StandIns) -> None:
    failed = replace(
        created(), status=Status.FAILED, reason="The image build failed.", log_url=LOG_URL
    )
    drive(dispatcher(standins), [created(), failed])
    [deployment] = deployments(standins)
    assert states(deployment) == ["in_progress", "failure"]
    assert deployment["statuses"][-1]["log_url"] == LOG_URL
    assert deployment["statuses"][-1]["description"] == "The image build failed."


def test_a_repeated_converge_adds_no_status(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    env = drive(notifier, lifecycle()[:3])
    assert notifier.environment_changed(env) == env
    [deployment] = deployments(standins)
    assert states(deployment) == ["in_progress", "success"]


def test_a_lost_record_reuses_the_deployment_github_already_has(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    drive(notifier, lifecycle()[:1])
    drive(notifier, lifecycle()[2:3])  # the notifications record was lost in between
    [deployment] = deployments(standins)
    assert states(deployment) == ["in_progress", "success"]


def test_github_down_does_not_raise_and_is_recorded(standins: StandIns) -> None:
    set_github_down(standins, True)
    env = dispatcher(standins).environment_changed(created())
    assert env.notifications["errors"]["github"]["at"] == 1000.0
    assert TOKEN not in json.dumps(env.notifications)


def test_after_github_comes_back_the_next_call_catches_up(standins: StandIns) -> None:
    notifier = dispatcher(standins)
    set_github_down(standins, True)
    env = drive(notifier, lifecycle()[:2])
    set_github_down(standins, False)
    env = notifier.environment_changed(replace(lifecycle()[2], notifications=env.notifications))
    [deployment] = deployments(standins)
    assert states(deployment) == ["success"]
    assert "errors" not in env.notifications


def test_delete_also_retires_deployments_missing_from_the_record(standins: StandIns) -> None:
    drive(dispatcher(standins), lifecycle()[:3])
    drive(dispatcher(standins), lifecycle()[-1:])  # the record was lost; GitHub still knows
    [deployment] = deployments(standins)
    assert states(deployment) == ["in_progress", "success", "inactive"]


def test_branch_head_is_the_sha_github_reports(standins: StandIns) -> None:
    assert gateway(standins).branch_head(REPO, BRANCH) == SHA2


def test_branch_head_of_a_deleted_branch_is_none(standins: StandIns) -> None:
    standins.delete_branch(REPO, BRANCH)
    assert gateway(standins).branch_head(REPO, BRANCH) is None


def test_branch_head_of_a_missing_repository_is_none(standins: StandIns) -> None:
    assert gateway(standins).branch_head("acme/gone", "main") is None


def test_list_branches_maps_names_to_heads(standins: StandIns) -> None:
    assert gateway(standins).list_branches(REPO) == {BRANCH: SHA2, "main": "0" * 40}


def test_file_contents_reads_a_file_at_a_ref(standins: StandIns) -> None:
    standins.set_file(REPO, ".branchenv.yml", "port: 3000\n", ref=BRANCH)
    assert gateway(standins).file_contents(REPO, ".branchenv.yml", BRANCH) == "port: 3000\n"


def test_file_contents_of_a_missing_file_is_none(standins: StandIns) -> None:
    assert gateway(standins).file_contents(REPO, ".branchenv.yml", "main") is None


def test_bad_credentials_raise_github_error_with_the_status(standins: StandIns) -> None:
    with pytest.raises(GitHubError) as exc:
        gateway(standins, token="ghp_wrongtoken00000000").list_branches(REPO)
    assert exc.value.status == 401
    assert "ghp_wrongtoken" not in str(exc.value)


def test_github_down_raises_github_error_after_retries(standins: StandIns) -> None:
    set_github_down(standins, True)
    with pytest.raises(GitHubError) as exc:
        gateway(standins).branch_head(REPO, BRANCH)
    assert "too many 503 error responses" in str(exc.value)


def asleep(env: Environment) -> Environment:
    return replace(env, status=Status.SLEEPING, asleep=True, slept_at=2000.0)


def test_going_to_sleep_and_waking_post_no_status(standins: StandIns) -> None:
    ready1 = lifecycle()[2]
    drive(dispatcher(standins), [*lifecycle()[:3], asleep(ready1), ready1])
    [deployment] = deployments(standins)
    assert states(deployment) == ["in_progress", "success"]  # success all along
    assert deployment["statuses"][-1]["environment_url"] == url_for(created())


def test_a_preview_that_fell_asleep_before_github_heard_of_its_success_shows_success(
    standins: StandIns,
) -> None:
    notifier = dispatcher(standins)
    env = drive(notifier, lifecycle()[:2])
    set_github_down(standins, True)
    env = notifier.environment_changed(replace(lifecycle()[2], notifications=env.notifications))
    set_github_down(standins, False)
    env = notifier.environment_changed(
        asleep(replace(lifecycle()[2], notifications=env.notifications))
    )
    [deployment] = deployments(standins)
    assert states(deployment) == ["in_progress", "success"]
    last = deployment["statuses"][-1]
    assert last["environment_url"] == url_for(created())  # the URL answers: it wakes
    assert last["description"] == "The preview is asleep; it wakes on the first request."
    assert "errors" not in env.notifications
    again = notifier.environment_changed(replace(lifecycle()[2], notifications=env.notifications))
    assert states(deployments(standins)[0]) == ["in_progress", "success"]  # woken: no second
    assert again.notifications == env.notifications


def test_a_sleeping_preview_whose_last_push_failed_keeps_the_failure(
    standins: StandIns,
) -> None:
    """sha2 failed and sha1 still serves: asleep, it is sha1 that wakes, so sha1's
    deployment stays success and sha2's stays failure."""
    story = failed_redeploy("ECS rolled the deployment back.")
    drive(dispatcher(standins), [*story, asleep(story[-1])])
    first, second = deployments(standins)
    assert (first["sha"], states(first)) == (SHA1, ["in_progress", "success"])
    assert (second["sha"], states(second)) == (SHA2, ["in_progress", "failure"])
