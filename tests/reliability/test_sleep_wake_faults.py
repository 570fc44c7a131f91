"""A failure at the k-th AWS call of a sleep and of a wake, for every k: the next sweep (for
a sleep) or SQS's redelivery and the page's own reload (for a wake) finish the job, the
environment is what it should be, and deleting it leaves nothing.

The fault kinds take turns over k, raised before the call reaches AWS or after it took
effect, in turn. Every k gets its own branch in one moto world.
"""

from __future__ import annotations

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Settings
from chalicelib.local.bootstrap import MAX_RECEIVE_COUNT
from tests.integration.faults import KINDS, WHEN, WITH_EVENTS, FaultInjector
from tests.integration.harness import World, sha_of
from tests.integration.sleepy import (
    HOUR,
    alb_request,
    desired_count,
    forwards,
    sweep,
    tasks_stopped,
    waker_settings,
)
from tests.reliability.support import deliver_until_done

LATER = 2 * HOUR  # past the default sleep_after of an hour


@pytest.fixture
def sleepy_world(settings: Settings, clients: ClientFactory) -> World:
    world = World(waker_settings(settings, clients), clients)
    world.push_image(sha_of(1))
    world.while_waiting = lambda: register_all_healthy(world)
    return world


def register_all_healthy(world: World) -> None:
    """ECS started the task of every preview that waits for one (AWS's side)."""
    for env in world.runtime.store.live():
        if env.status == Status.DEPLOYING and env.target_group_arn:
            world.clients.client("elbv2").register_targets(
                TargetGroupArn=env.target_group_arn, Targets=[{"Id": "10.0.1.10", "Port": 8080}]
            )


def ready(world: World, branch: str) -> None:
    deliver_until_done(world, world.push(branch, sha_of(1)))  # the image is in ECR already
    world.deployment_completed(branch)


def put_to_sleep(world: World, branch: str) -> list[str]:
    """Sweeps until the branch sleeps (at most three); the errors the sweeps reported. A
    sweep that fails outright is a failed scheduled invocation: the next one runs."""
    errors: list[str] = []
    for _ in range(3):
        try:
            errors += sweep(world, later=LATER).errors
        except Exception as exc:
            errors.append(repr(exc))
        env = record_as_aws_holds_it(world, branch)
        if env is not None and env.status == Status.SLEEPING and env.asleep:
            break
    return errors


def wake(world: World, branch: str) -> None:
    """A person opens the URL, and reloads the page until the preview answers."""
    for _ in range(MAX_RECEIVE_COUNT):
        alb_request(world, branch)
        lambda_polls_the_queue(world)
        env = record_as_aws_holds_it(world, branch)  # the test's read: no fault there
        if env is not None and env.status == Status.READY:
            return


def record_as_aws_holds_it(world: World, branch: str) -> Environment | None:
    store = DynamoEnvironmentStore(world.aws_side.client("dynamodb"), world.settings.table_name)
    return store.get(world.names(branch).slug)


def lambda_polls_the_queue(world: World) -> None:
    """Lambda's SQS event source: its receives are AWS's calls, not branchenv's (so no
    fault is injected there); a message whose handler fails is delivered again (the tests
    skip its visibility timeout)."""
    sqs, url = world.aws_side.client("sqs"), world.settings.queue_url
    for _ in range(MAX_RECEIVE_COUNT):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return
        receipt = messages[0]["ReceiptHandle"]
        try:
            world.run_worker(messages[0]["Body"])
        except Exception:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)


def assert_asleep(world: World, branch: str) -> None:
    env = world.env(branch)
    assert env is not None and (env.status, env.asleep) == (Status.SLEEPING, True), env
    assert desired_count(world, branch) == 0
    assert forwards(world, branch)[0][1] == 1 and len(forwards(world, branch)) == 2


def assert_awake(world: World, branch: str) -> None:
    env = world.env(branch)
    assert env is not None and (env.status, env.asleep) == (Status.READY, False), env
    assert desired_count(world, branch) == 1
    assert forwards(world, branch) == [(env.target_group_arn, 1)]


def delete_and_audit(world: World, branch: str) -> None:
    deliver_until_done(world, world.delete(branch))
    env = world.env(branch)
    assert env is not None and env.status == Status.DELETED, env
    assert world.leftovers(branch) == []


def count_calls(world: World, faults: FaultInjector, action: str, branch: str) -> int:
    ready(world, branch)
    if action == "wake":
        assert put_to_sleep(world, branch) == []
        tasks_stopped(world, branch)
    faults.reset()
    put_to_sleep(world, branch) if action == "sleep" else wake(world, branch)
    count = len(faults.calls)
    delete_and_audit(world, branch)
    return count


@pytest.mark.parametrize("action", ["sleep", "wake"])
def test_a_fault_at_every_call_of_sleep_and_wake_converges_and_leaks_nothing(
    sleepy_world: World, action: str
) -> None:
    world = sleepy_world
    faults = FaultInjector(world.clients, services=(*WITH_EVENTS, "cloudwatch"))
    count_calls(world, faults, action, "warm-up")
    total = count_calls(world, faults, action, "probe")
    assert total >= 4, total

    for k in range(1, total + 1):
        branch = f"{action}-{k}"
        kind, when = KINDS[k % len(KINDS)], WHEN[k % len(WHEN)]
        ready(world, branch)
        if action == "wake":
            assert put_to_sleep(world, branch) == []
            tasks_stopped(world, branch)
        faults.reset(fail_at=k, kind=kind, when=when)
        if action == "sleep":
            put_to_sleep(world, branch)
        else:
            wake(world, branch)
        faults.reset()
        assert faults.failed, f"call {k} was never made"
        (assert_asleep if action == "sleep" else assert_awake)(world, branch)
        delete_and_audit(world, branch)
        faults.failed.clear()
    assert world.leftovers() == []
