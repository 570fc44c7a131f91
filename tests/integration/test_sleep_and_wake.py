"""Idle previews sleep behind the waker and wake on the first request, against moto.

What a user sees (the status, the waking page) and what AWS holds (the service's desired
count, where the rule forwards, what stays while asleep), through the real reaper, waker,
worker and converge; every test that deletes its branch ends with the leak audit.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.kinds import REGISTRY
from chalicelib.engine.converge.sleep import WAKING_REASON
from tests.integration.harness import World, sha_of
from tests.integration.sleepy import (
    HOUR,
    SLACKBOT,
    alb_request,
    desired_count,
    forwards,
    requests_served,
    sweep,
    tasks_stopped,
    wake_message,
    waker_settings,
)

BRANCH = "feature/sleepy"
FULL = {spec.kind for spec in REGISTRY}


class Files:
    """GitHub's contents API: one branchenv.yml for every sha."""

    def __init__(self, text: str) -> None:
        self.text = text

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        return self.text


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> World:
    return World(waker_settings(settings, clients), clients)


def waker_of(world: World) -> str:
    arn = world.settings.listeners[0].waker_target_group_arn
    assert arn is not None
    return arn


def asleep(world: World, branch: str = BRANCH) -> None:
    """Ready, then idle for two hours (the default sleep_after is one): one sweep sleeps it."""
    world.make_ready(branch, sha_of(1))
    report = sweep(world, later=2 * HOUR)
    assert [entry.split(":")[0] for entry in report.slept] == [world.names(branch).slug]
    assert report.errors == []
    tasks_stopped(world, branch)


def test_an_idle_preview_sleeps_at_zero_tasks_behind_the_waker_and_keeps_the_rest(
    world: World,
) -> None:
    asleep(world)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.SLEEPING and env.asleep
    assert desired_count(world, BRANCH) == 0
    # The waker takes the traffic; the preview's own group stays on the rule at weight 0.
    assert forwards(world, BRANCH) == [(waker_of(world), 1), (env.target_group_arn, 0)]
    assert world.kinds(BRANCH) == FULL  # priority, target group, task definition, DNS stay
    # Asleep is a resting state: the next sweep does nothing more.
    again = sweep(world, later=3 * HOUR)
    assert again.slept == [] and again.errors == []


def test_a_request_within_sleep_after_keeps_it_awake(world: World) -> None:
    world.make_ready(BRANCH, sha_of(1))
    later = 2 * HOUR
    requests_served(world, BRANCH, 3, at=time.time() + later - 20 * 60)

    report = sweep(world, later=later)

    assert report.slept == []
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and not env.asleep
    assert desired_count(world, BRANCH) == 1
    assert forwards(world, BRANCH) == [(env.target_group_arn, 1)]


def test_a_recent_deploy_keeps_it_awake_without_asking_cloudwatch(world: World) -> None:
    world.make_ready(BRANCH, sha_of(1))
    calls: list[str] = []
    world.clients.client("cloudwatch").meta.events.register(
        "before-call.cloudwatch", lambda model, **_: calls.append(model.name)
    )

    report = sweep(world, later=30 * 60)  # within the default hour

    assert report.slept == [] and calls == []
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_a_request_wakes_it_with_a_page_and_it_is_ready_once_a_target_is_healthy(
    world: World,
) -> None:
    asleep(world)
    before = world.env(BRANCH)
    assert before is not None

    page = alb_request(world, BRANCH)

    assert page["statusCode"] == 503 and page["headers"]["Retry-After"] == "10"
    assert "Waking up feature/sleepy" in page["body"] and 'http-equiv="refresh"' in page["body"]
    seen: list[tuple[Status, str | None, list[tuple[str, int]]]] = []

    def ecs_starts_the_task() -> None:  # what AWS does while converge waits
        env = world.env(BRANCH)
        assert env is not None
        seen.append((env.status, env.reason, forwards(world, BRANCH)))
        world.register_healthy_target(BRANCH)

    world.while_waiting = ecs_starts_the_task
    assert world.drain() == 1  # the wake the page asked for

    # While the task started the preview showed "waking up" and the waker kept the host.
    assert seen[0][:2] == (Status.DEPLOYING, WAKING_REASON)
    assert seen[0][2][0] == (waker_of(world), 1)
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and not env.asleep
    assert desired_count(world, BRANCH) == 1
    assert forwards(world, BRANCH) == [(env.target_group_arn, 1)]
    assert env.ready_seconds == before.ready_seconds  # a wake is not a push becoming ready


def test_many_requests_while_waking_send_one_wake(world: World) -> None:
    asleep(world)
    for _ in range(5):
        alb_request(world, BRANCH)
    world.while_waiting = lambda: world.register_healthy_target(BRANCH)

    assert world.drain() == 1  # FIFO deduplication kept one
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("user_agent", "method"), [(SLACKBOT, "GET"), ("Twitterbot/1.0", "GET"), (None, "HEAD")]
)
def test_a_link_preview_bot_or_a_head_request_gets_the_page_and_wakes_nothing(
    world: World, user_agent: str | None, method: str
) -> None:
    asleep(world)

    page = alb_request(world, BRANCH, user_agent=user_agent or "curl/8.5", method=method)

    assert page["statusCode"] == 503
    assert world.drain() == 0
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.SLEEPING and env.asleep
    assert desired_count(world, BRANCH) == 0


def test_a_host_with_no_preview_gets_a_404_page(world: World) -> None:
    world.make_ready(BRANCH, sha_of(1))
    page = alb_request(world, "feature/never-pushed")
    assert page["statusCode"] == 404 and world.drain() == 0


def test_a_push_to_a_sleeping_branch_deploys_and_wakes_it(world: World) -> None:
    asleep(world)
    world.push_image(sha_of(2))

    world.deliver(world.push(BRANCH, sha_of(2)))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING and not env.asleep
    assert desired_count(world, BRANCH) == 1
    world.deployment_completed(BRANCH)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(2)
    assert forwards(world, BRANCH) == [(env.target_group_arn, 1)]


def test_a_sleeping_branch_deleted_leaves_nothing_and_the_waker_stays(world: World) -> None:
    asleep(world)

    world.deliver(world.delete(BRANCH))

    assert world.env(BRANCH).status == Status.DELETED  # type: ignore[union-attr]
    assert world.leftovers() == []
    waker = world.aws_side.client("elbv2").describe_target_groups(TargetGroupArns=[waker_of(world)])
    assert waker["TargetGroups"]  # shared by every preview: never ours to delete


def test_the_dashboards_wake_message_wakes_it(world: World) -> None:
    asleep(world)
    world.while_waiting = lambda: world.register_healthy_target(BRANCH)

    world.run_worker(wake_message(world, BRANCH))

    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_sleep_after_in_branchenv_yml_wins_over_the_setting(world: World) -> None:
    world.runtime.converger.config_source = Files("sleep_after: 5m\n")
    world.make_ready(BRANCH, sha_of(1))
    assert world.env(BRANCH).sleep_after_minutes == 5  # type: ignore[union-attr]

    assert sweep(world, later=4 * 60).slept == []
    assert len(sweep(world, later=6 * 60).slept) == 1


def test_sleep_after_never_keeps_a_preview_awake(world: World) -> None:
    world.runtime.converger.config_source = Files("sleep_after: never\n")
    world.make_ready(BRANCH, sha_of(1))

    assert sweep(world, later=48 * HOUR).slept == []
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_without_a_waker_nothing_sleeps(settings: Settings, clients: ClientFactory) -> None:
    # The bootstrap makes a waker per load balancer, as terraform/ does: take them away.
    listeners = tuple(replace(item, waker_target_group_arn=None) for item in settings.listeners)
    world = World(replace(settings, listeners=listeners), clients)
    world.make_ready(BRANCH, sha_of(1))

    assert sweep(world, later=48 * HOUR).slept == []
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]
