"""What AWS refuses and moto accepts, met by a whole lifecycle (issue 12): each test runs
the worker and converge against moto with the strict-AWS layer on (tests/conftest.py), and
would fail against the converge that only ever met moto.

- ECS's circuit breaker rolls a failed deployment back (ECS developer guide, "How the
  Amazon ECS deployment circuit breaker detects failures"): the commit ends failed, the
  previous one keeps serving, and the failed one is never deployed again.
- ECS refuses CreateService while the target group's new rule has not propagated, and
  ELB refuses DeleteTargetGroup shortly after its rule went: converge waits (RetryLater),
  and a wait costs its own backoff, never the queue's visibility timeout.
- An Application Load Balancer takes at most 100 rules and 100 target groups ("Quotas for
  your Application Load Balancers"): a full pool fails fast and leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from tests.conftest import strict_layer_of
from tests.integration.harness import REPOSITORY, World, sha_of
from tests.integration.test_repo_config_converge import FakeGitHubFiles

BRANCH = "feature/login"
OTHER = "feature/other"
WRITES = ("UpdateService", "RegisterTaskDefinition", "CreateService")


class CallLog:
    """The AWS operations the worker's clients send (an ``after-call`` hook)."""

    def __init__(self, clients: ClientFactory) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for service in ("ecs", "elbv2"):
            events = clients.client(service).meta.events
            events.register("provide-client-params", self._remember)

    def _remember(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> World:
    return World(settings, clients)


def ready_at(world: World, branch: str, sha: str) -> None:
    world.make_ready(branch, sha)
    env = world.env(branch)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha, env


# --- ECS deployment circuit breaker ---------------------------------------------------------


def test_a_rolled_back_deployment_ends_failed_and_the_previous_commit_keeps_serving(
    world: World, clients: ClientFactory
) -> None:
    ready_at(world, BRANCH, sha_of(1))
    serving = world.service(BRANCH)["taskDefinition"]
    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2)))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    assert env.deployed_sha == sha_of(1)  # not deployed until it is ready

    calls = CallLog(clients)
    world.deployment_failed(BRANCH, reason="ECS deployment circuit breaker: tasks failed.")

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED, env
    assert env.desired_sha == sha_of(2) and env.deployed_sha == sha_of(1)
    assert env.reason is not None
    assert "tasks failed" in env.reason and sha_of(1)[:7] in env.reason
    assert world.service(BRANCH)["taskDefinition"] == serving
    assert not set(WRITES) & set(calls.names()), calls.names()


def test_the_failed_commit_is_not_deployed_again_until_a_new_push(
    world: World, clients: ClientFactory
) -> None:
    ready_at(world, BRANCH, sha_of(1))
    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2)))
    world.deployment_failed(BRANCH)
    calls = CallLog(clients)

    # As the reaper's sweep does: observing every kind in AWS.
    world.runtime.converger.converge(world.names(BRANCH).slug, observe_all=True)
    world.deliver(world.push(BRANCH, sha_of(2)))  # GitHub redelivers the same push
    assert not set(WRITES) & set(calls.names()), calls.names()
    assert world.env(BRANCH).status == Status.FAILED  # type: ignore[union-attr]

    world.push_image(sha_of(3))
    world.deliver(world.push(BRANCH, sha_of(3)))
    assert "UpdateService" in calls.names()
    world.deployment_completed(BRANCH)
    env = world.env(BRANCH)
    assert env is not None and (env.status, env.deployed_sha) == (Status.READY, sha_of(3))


def test_a_first_deployment_that_fails_says_nothing_serves(world: World) -> None:
    world.push_image(sha_of(1))
    world.deliver(world.push(BRANCH, sha_of(1)))

    world.deployment_failed(BRANCH)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED and env.deployed_sha is None
    assert env.reason is not None and "nothing serves" in env.reason


# --- waits cost their own backoff -----------------------------------------------------------


def test_create_service_waits_for_the_new_rule_to_reach_ecs(
    world: World, clients: ClientFactory
) -> None:
    calls = CallLog(clients)
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    assert calls.names().count("CreateRule") == 1
    # refused until the rule propagated, then created: the wait cost backoffs of 2, 4, 8, 16 s
    assert 0 < world.waited <= 2 + 4 + 8 + 16
    assert calls.names().count("CreateService") >= 2


def test_delete_waits_for_the_rule_to_let_go_of_the_target_group(world: World) -> None:
    ready_at(world, BRANCH, sha_of(1))
    before = world.waited

    world.deliver(world.delete(BRANCH))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert world.waited > before
    assert world.leftovers() == []


# --- the load balancers' quotas -------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "code"),
    [
        ("rules_per_load_balancer", "TooManyRules"),
        ("target_groups_per_load_balancer", "TooManyUniqueTargetGroupsPerLoadBalancer"),
    ],
)
def test_a_full_load_balancer_fails_fast_leaves_nothing_and_deploys_once_there_is_room(
    world: World, quota: str, code: str
) -> None:
    layer = strict_layer_of(world.clients)
    assert layer is not None
    setattr(layer, quota, 1)  # AWS's 100, without making 100 previews
    ready_at(world, BRANCH, sha_of(1))

    world.push_image(sha_of(2))
    world.deliver(world.push(OTHER, sha_of(2)))

    env = world.env(OTHER)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and code in env.reason and "full" in env.reason
    assert world.leftovers(OTHER) == []
    assert world.waited < 60

    world.deliver(world.delete(BRANCH))
    world.push_image(sha_of(3))
    world.deliver(world.push(OTHER, sha_of(3)))
    env = world.env(OTHER)
    assert env is not None and env.status == Status.DEPLOYING, env


# --- a repository's own port and health check ---------------------------------------------


def test_a_changed_port_and_health_check_path_reach_the_existing_service(
    world: World,
) -> None:
    files = FakeGitHubFiles()
    world.runtime.converger.config_source = files
    ready_at(world, BRANCH, sha_of(1))
    files.files[(REPOSITORY, sha_of(2))] = (
        "service:\n  container_port: 3000\n  health_check_path: /healthz\n"
    )

    world.push_image(sha_of(2))
    world.deliver(world.push(BRANCH, sha_of(2)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING, env.reason
    [balancer] = world.service(BRANCH)["loadBalancers"]
    assert balancer["containerPort"] == 3000
    group = world.runtime.converger.load_balancing.find_target_group(
        world.names(BRANCH).target_group
    )
    assert group is not None and group.health_check_path == "/healthz"


def test_a_serving_preview_without_room_for_its_rule_keeps_everything(world: World) -> None:
    layer = strict_layer_of(world.clients)
    assert layer is not None
    ready_at(world, BRANCH, sha_of(1))
    ready_at(world, OTHER, sha_of(2))
    env = world.env(BRANCH)
    assert env is not None and env.rule_arn is not None
    world.aws_side.client("elbv2").delete_rule(RuleArn=env.rule_arn)  # by hand
    layer.rules_per_load_balancer = 1  # OTHER's rule fills the load balancer

    # The sweep finds the rule gone (tests/integration/test_reaper.py) and converges so.
    world.runtime.converger.converge(env.slug, observe_all=True)

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "full" in env.reason
    assert {"dns_record", "service", "target_group"} <= world.kinds(BRANCH)
