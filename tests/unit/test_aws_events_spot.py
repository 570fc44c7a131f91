"""One Fargate Spot interruption is one converge request: of the Task State Change events
an interrupted task sends on its way down, only the STOPPED one is translated, and it
carries the task's ARN so converge can count each stopped task once."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.handlers.aws_events import translate
from tests.conftest import load_event, offline_settings

SERVICE = "demo-feature-login-df7c7aeb_1"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/demo/6b1b4b3e8ee24a0fa2cf3bd8a2d7f9e5"
# The states an interrupted Fargate Spot task reports after its termination notice (ECS
# Developer Guide, "Amazon ECS task lifecycle").
WAY_DOWN = ("RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")


def interrupted(last_status: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load_event("aws/ecs.task-spot-interrupted"))
    event["detail"].update(lastStatus=last_status, desiredStatus="STOPPED", **changes)
    return event


def test_one_interruption_is_translated_once_for_the_stopped_task() -> None:
    settings = offline_settings()

    translations = [translate(interrupted(status), settings) for status in WAY_DOWN]

    found = [t for t in translations if t is not None]
    assert len(found) == 1
    [stopped] = found
    assert stopped.slug == "feature-login-df7c7aeb"
    assert stopped.detail == {
        "signal": "spot_interrupted",
        "reason": "Your Spot Task was interrupted.",
        "task_arn": TASK_ARN,
    }


def test_the_documented_payload_carries_the_task_arn() -> None:
    translation = translate(load_event("aws/ecs.task-spot-interrupted"), offline_settings())
    assert translation is not None and translation.detail["task_arn"] == TASK_ARN


@pytest.mark.parametrize(
    "changes",
    [
        {"stopCode": "TaskFailedToStart"},
        {"group": "family:demo-feature-login-df7c7aeb"},
        {"group": "service:someone-elses-service_1"},
        {"taskArn": None},
    ],
)
def test_other_stopped_tasks_are_not_spot_interruptions(changes: dict[str, Any]) -> None:
    assert translate(interrupted("STOPPED", **changes), offline_settings()) is None
