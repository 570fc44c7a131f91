"""Helpers for the reliability suite: GitHub's branch listing, the reaper, SQS-like
redelivery and whole lifecycles (create or push → ready → delete) in one moto world.

Nothing here patches anything: the worker, converge and the reaper run as in Lambda,
against moto, with a fake GitHub passed in.
"""

from __future__ import annotations

from chalicelib.domain.environments import Status
from chalicelib.domain.messages import BranchEvent
from chalicelib.handlers.reaper import ReapReport
from chalicelib.local.bootstrap import MAX_RECEIVE_COUNT  # then SQS moves it to the DLQ
from tests.integration.harness import REPOSITORY, World
from tests.integration.sleepy import reaper_of


class RepositoryMissing(Exception):
    status = 404


class FakeGitHub:
    """What GitHub says exists: the branches of each repository with their heads."""

    def __init__(self) -> None:
        self.repositories: dict[str, dict[str, str]] = {REPOSITORY: {}}

    def set_head(self, branch: str, sha: str) -> None:
        self.repositories[REPOSITORY][branch] = sha

    def remove(self, branch: str) -> None:
        self.repositories[REPOSITORY].pop(branch, None)

    def list_branches(self, repository: str) -> dict[str, str]:
        if repository not in self.repositories:
            raise RepositoryMissing(repository)
        return dict(self.repositories[repository])


def reap(world: World, github: FakeGitHub) -> ReapReport:
    """One reaper sweep with GitHub's truth as ``github`` holds it."""
    return reaper_of(world.runtime, github=github).run()


def deliver_until_done(world: World, event: BranchEvent) -> list[Exception]:
    """Deliver like SQS: again after each failure, at most MAX_RECEIVE_COUNT times.
    Returns the failures seen; raises if the message would have gone to the DLQ."""
    failures: list[Exception] = []
    for _ in range(MAX_RECEIVE_COUNT):
        try:
            world.deliver(event)
            return failures
        except Exception as exc:
            failures.append(exc)
    raise AssertionError(f"{event.branch}: still failing after retries: {failures!r}")


def deployment_completed(world: World, branch: str) -> None:
    """ECS finished the rollout; the worker's message is retried until it is handled."""
    try:
        world.deployment_completed(branch)
    except Exception:
        for _ in range(MAX_RECEIVE_COUNT):
            try:
                world.drain()
                return
            except Exception:
                continue
        raise


def deployed_image(world: World, branch: str) -> str:
    """The image of the task definition the branch's ECS service runs."""
    env = world.env(branch)
    assert env is not None and env.service_name is not None
    ecs = world.clients.client("ecs")
    [service] = ecs.describe_services(cluster=world.settings.cluster, services=[env.service_name])[
        "services"
    ]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    return str(definition["taskDefinition"]["containerDefinitions"][0]["image"])


def assert_ready_at(world: World, branch: str, sha: str) -> None:
    env = world.env(branch)
    assert env is not None, branch
    assert (env.status, env.desired_sha, env.deployed_sha) == (Status.READY, sha, sha), env
    assert deployed_image(world, branch).endswith(f":{sha}")


def assert_gone(world: World, branch: str) -> None:
    env = world.env(branch)
    assert env is not None and env.status == Status.DELETED, env
    assert world.leftovers(branch) == []
