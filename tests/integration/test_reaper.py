"""The reaper makes every environment converge to its branch's truth and removes what is
tagged as ours with no live environment, never anything else."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.markers import DynamoMarkers
from chalicelib.aws.sqs import DeadLetterQueue
from chalicelib.domain.environments import CONCURRENT_UPDATE_ATTEMPTS, Status
from chalicelib.domain.settings import Settings
from chalicelib.handlers.deadletter import DeadLetters
from chalicelib.handlers.reaper import Reaper, ReapReport
from tests.integration.harness import REPOSITORY, World, sha_of
from tests.integration.test_concurrency import RivalWriter

BRANCH = "feature/login"
OTHER = "feature/other"
DAY = 86400.0
SWEEP_SECONDS = 15 * 60


class FakeGitHub:
    """What GitHub says exists: one listing of branches per repository."""

    def __init__(self) -> None:
        self.repositories: dict[str, dict[str, str]] = {}
        self.listings: list[str] = []
        self.failing = False

    def list_branches(self, repository: str) -> dict[str, str]:
        self.listings.append(repository)
        if self.failing:
            raise ConnectionError("GitHub is down")
        if repository not in self.repositories:
            raise RepositoryMissing()
        return dict(self.repositories[repository])

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        return None


class RepositoryMissing(Exception):
    status = 404


@pytest.fixture
def github() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> World:
    return World(settings, clients)


def reaper(
    world: World,
    github: FakeGitHub,
    *,
    now: float | None = None,
    dead_letters: DeadLetters | None = None,
) -> Reaper:
    rt = world.runtime
    base = rt.reaper
    return Reaper(
        settings=world.settings,
        store=rt.store,
        converger=rt.converger,
        repo_configs=rt.converger.repo_configs,
        inventory=base.inventory,
        github=github,
        clock=(lambda: now) if now is not None else time.time,
        dead_letters=dead_letters,
        queue=rt.queue,
    )


def sweeps(world: World, github: FakeGitHub, *, now: float | None = None) -> ReapReport:
    """A sweep and the worker going on with what had to wait, then the next sweep 15
    minutes later (the schedule) and its worker; the first sweep's report.

    ELB answers DeleteTargetGroup with ResourceInUse while, and for a short while after, a
    rule forwards to the group (ELB API Reference, DeleteTargetGroup; the strict layer plays
    it): the sweep hands such an environment to the worker, which finishes it after its own
    backoff. Leftovers of an environment branchenv has no record of (a priority claim) are
    known only to a sweep, so the next sweep removes them."""
    first = reaper(world, github, now=now).run()
    world.drain()
    world.let_time_pass(SWEEP_SECONDS)
    reaper(world, github, now=now).run()
    world.drain()
    return first


class RecordedAlerts:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def alert(self, text: str) -> None:
        self.texts.append(text)


def deployed(world: World, github: FakeGitHub, *branches: str) -> None:
    world.push_image(sha_of(1))
    for branch in branches:
        world.deliver(world.push(branch, sha_of(1)))
        world.deployment_completed(branch)
        github.repositories.setdefault(REPOSITORY, {})[branch] = sha_of(1)


def test_a_branch_deleted_without_a_webhook_is_removed(world: World, github: FakeGitHub) -> None:
    deployed(world, github, BRANCH, OTHER)
    del github.repositories[REPOSITORY][BRANCH]

    report = sweeps(world, github)

    assert report.branch_gone == [world.names(BRANCH).slug]
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert env.reason == f"branch {BRANCH} no longer exists on GitHub"
    assert world.leftovers(BRANCH) == []
    assert world.env(OTHER).status == Status.READY  # type: ignore[union-attr]
    assert github.listings == [REPOSITORY] * 2  # one per repository and sweep, not per branch


def test_a_repository_that_is_gone_takes_its_environments(world: World, github: FakeGitHub) -> None:
    deployed(world, github, BRANCH)
    github.repositories.clear()

    sweeps(world, github)

    assert world.env(BRANCH).status == Status.DELETED  # type: ignore[union-attr]
    assert world.leftovers() == []


def test_github_down_removes_nothing(world: World, github: FakeGitHub) -> None:
    deployed(world, github, BRANCH)
    github.failing = True

    report = reaper(world, github).run()

    assert report.errors and "could not list branches" in report.errors[0]
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_a_missed_push_is_deployed(world: World, github: FakeGitHub) -> None:
    deployed(world, github, BRANCH)
    world.push_image(sha_of(2))
    github.repositories[REPOSITORY][BRANCH] = sha_of(2)

    report = reaper(world, github).run()

    assert report.head_moved == [world.names(BRANCH).slug]
    env = world.env(BRANCH)
    assert env is not None and env.desired_sha == sha_of(2) and env.status == Status.DEPLOYING


def test_a_missed_push_is_recorded_while_another_writer_keeps_changing_the_record(
    world: World, github: FakeGitHub
) -> None:
    deployed(world, github, BRANCH)
    world.push_image(sha_of(2))
    github.repositories[REPOSITORY][BRANCH] = sha_of(2)
    rival = RivalWriter(world, BRANCH, times=CONCURRENT_UPDATE_ATTEMPTS - 1)
    rival.armed = True

    with rival:
        report = reaper(world, github).run()

    assert rival.writes == CONCURRENT_UPDATE_ATTEMPTS - 1
    assert report.errors == []
    env = world.env(BRANCH)
    assert env is not None and env.desired_sha == sha_of(2) and env.status == Status.DEPLOYING


def test_an_idle_environment_is_removed_after_its_ttl_with_a_way_back(
    world: World, github: FakeGitHub
) -> None:
    deployed(world, github, BRANCH)

    report = sweeps(world, github, now=time.time() + 4 * DAY)

    assert report.expired == [world.names(BRANCH).slug]
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert env.reason is not None and "push to the branch again" in env.reason
    assert world.leftovers(BRANCH) == []


def test_a_kept_branch_is_never_expired(world: World, github: FakeGitHub) -> None:
    class KeptFiles(FakeGitHub):
        def file_contents(self, repository: str, path: str, ref: str) -> str | None:
            return "keep: ['feature/**']\n"

    world.runtime.converger.config_source = KeptFiles()
    deployed(world, github, BRANCH)

    report = reaper(world, github, now=time.time() + 30 * DAY).run()

    assert report.expired == []
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]


def test_an_environment_stuck_in_a_transient_state_fails_with_a_reason(
    world: World, github: FakeGitHub
) -> None:
    world.deliver(world.push(BRANCH, sha_of(9)))  # no image ever arrives
    github.repositories[REPOSITORY] = {BRANCH: sha_of(9)}

    report = reaper(world, github, now=time.time() + 3600).run()

    assert report.stuck == [world.names(BRANCH).slug]
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and env.reason.startswith("stuck in building for 60 minutes")


def test_a_removal_that_must_wait_is_finished_by_the_worker_not_the_next_sweep(
    world: World, github: FakeGitHub
) -> None:
    deployed(world, github, BRANCH)
    del github.repositories[REPOSITORY][BRANCH]

    report = reaper(world, github).run()
    waiting = world.env(BRANCH)
    world.drain()

    assert report.errors == []
    assert waiting is not None and waiting.status == Status.DELETING  # ResourceInUse
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert world.leftovers(BRANCH) == []


def test_resources_of_an_unknown_environment_are_removed(world: World, github: FakeGitHub) -> None:
    deployed(world, github, BRANCH)
    table = world.settings.table_name
    world.clients.client("dynamodb").delete_item(
        TableName=table, Key={"pk": {"S": f"env#{world.names(BRANCH).slug}"}}
    )
    assert len(world.leftovers(BRANCH)) == 7

    report = sweeps(world, github)

    assert len(report.orphans) == 7
    assert world.leftovers() == []


def test_a_rule_deleted_by_hand_is_found_by_the_sweep_and_put_back(
    world: World, github: FakeGitHub
) -> None:
    deployed(world, github, BRANCH, OTHER)
    env = world.env(BRANCH)
    assert env is not None and env.known and env.rule_arn is not None
    world.aws_side.client("elbv2").delete_rule(RuleArn=env.rule_arn)

    report = reaper(world, github).run()
    world.drain()

    assert report.drifted == [f"{env.slug}: listener_rule not found"]
    after = world.env(BRANCH)
    assert after is not None and after.status == Status.READY
    assert after.rule_arn not in (None, env.rule_arn)
    listener = world.settings.listeners[0].listener_arn
    rules = world.clients.client("elbv2").describe_rules(ListenerArn=listener)["Rules"]
    assert after.rule_arn in {rule["RuleArn"] for rule in rules}
    assert reaper(world, github).run().drifted == []  # repaired: the next sweep finds nothing


def test_two_leftover_claims_on_one_listener_are_both_freed_by_one_sweep(
    world: World, github: FakeGitHub
) -> None:
    deployed(world, github, BRANCH)
    store, listener = world.runtime.store, world.settings.listeners[0].listener_arn
    live = sorted(store.priority_claims())
    assert store.claim_priority(listener, 7, "feature-gone")
    assert store.claim_priority(listener, 9, "feature-gone")

    report = reaper(world, github).run()

    assert report.errors == []
    assert sorted(store.priority_claims()) == live  # the live branch's claim stays


def test_a_hand_made_service_named_like_a_preview_survives(
    world: World, github: FakeGitHub
) -> None:
    deployed(world, github, BRANCH)
    names = world.names(BRANCH)
    ecs = world.clients.client("ecs")
    family = ecs.describe_task_definition(taskDefinition=names.task_family)
    ecs.create_service(
        cluster=world.settings.cluster,
        serviceName=names.service(7),
        taskDefinition=family["taskDefinition"]["taskDefinitionArn"],
        desiredCount=0,
    )
    del github.repositories[REPOSITORY][BRANCH]

    sweeps(world, github)
    sweeps(world, github)

    assert world.leftovers() == []
    survivor = ecs.describe_services(cluster=world.settings.cluster, services=[names.service(7)])[
        "services"
    ][0]
    assert survivor["status"] == "ACTIVE"


def test_a_dry_run_reports_and_changes_nothing(world: World, github: FakeGitHub) -> None:
    deployed(world, github, BRANCH)
    del github.repositories[REPOSITORY][BRANCH]
    before = world.leftovers()

    report = reaper(world, github, now=time.time() + 10 * DAY).run(dry_run=True)

    assert isinstance(report, ReapReport) and report.dry_run
    assert report.branch_gone == [world.names(BRANCH).slug]
    assert world.env(BRANCH).status == Status.READY  # type: ignore[union-attr]
    assert world.leftovers() == before


def test_sweeps_alert_about_a_dead_letter_once_not_every_fifteen_minutes(
    world: World, github: FakeGitHub
) -> None:
    sqs = world.clients.client("sqs")
    dead = DeadLetterQueue(sqs, world.settings.queue_url)
    body = {"type": "converge", "slug": "feature-gone", "cause": "test", "detail": {}}
    sqs.send_message(
        QueueUrl=dead.url(),
        MessageBody=json.dumps(body),
        MessageGroupId="feature-gone",
        MessageDeduplicationId="1",
    )
    alerts = RecordedAlerts()

    def sweep() -> ReapReport:
        # As the scheduled Lambda builds it: a new check per invocation, remembering in
        # the environments table.
        memory = DynamoMarkers(world.clients.client("dynamodb"), world.settings.table_name)
        check = DeadLetters(dead, alerts, memory=memory)
        return reaper(world, github, dead_letters=check).run()

    reports = [sweep(), sweep(), sweep()]

    assert [r.dead_letters for r in reports] == [["feature-gone"]] * 3
    [text] = alerts.texts
    assert "1 new dead letter since the last alert (1 waiting in all" in text


def test_the_reaper_reads_branchenv_yml_through_the_same_source_as_converge(
    world: World,
) -> None:
    """One reader of branchenv.yml (and one cache of it per sha) for the whole runtime."""
    runtime = world.runtime
    assert runtime.reaper.repo_configs is runtime.converger.repo_configs
