"""Builders for the event payloads AWS delivers to Lambda: SQS batches, EventBridge events.

The local stack's queue pump, scheduler and event relay hand these to the same Chalice
handlers AWS would call, and tests build their events here too, so both use one shape: the
one in the AWS documentation ("ECS Deployment State Change", "CodeBuild Build State
Change", "ECR Image Action", "Scheduled Event", the SQS event source batch). Pure
functions: no I/O, nothing here ever calls AWS.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account
ECS_DEPLOYMENT_IN_PROGRESS = "SERVICE_DEPLOYMENT_IN_PROGRESS"
ECS_DEPLOYMENT_COMPLETED = "SERVICE_DEPLOYMENT_COMPLETED"
ECS_DEPLOYMENT_FAILED = "SERVICE_DEPLOYMENT_FAILED"


@dataclass(frozen=True)
class QueuedMessage:
    """One message as SQS ReceiveMessage returns it, reduced to what Lambda passes on."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]


def sqs_event(messages: Sequence[QueuedMessage], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to the handler."""
    return {
        "Records": [
            {
                "messageId": message.message_id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": message.attributes,
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def ecs_deployment_event(
    *,
    service_arn: str,
    deployment_id: str,
    region: str,
    event_name: str = ECS_DEPLOYMENT_COMPLETED,
    reason: str | None = None,
    account: str = ACCOUNT_ID,
) -> dict[str, Any]:
    """ECS "Deployment State Change" (detail.eventName SERVICE_DEPLOYMENT_COMPLETED/...);
    the default reasons are the ECS developer guide's examples ("Amazon ECS service
    deployment state change events")."""
    failed = event_name == ECS_DEPLOYMENT_FAILED
    state = {ECS_DEPLOYMENT_IN_PROGRESS: "in progress", ECS_DEPLOYMENT_FAILED: "failed"}
    default_reason = f"ECS deployment {deployment_id} {state.get(event_name, 'completed')}."
    return _envelope(
        source="aws.ecs",
        detail_type="ECS Deployment State Change",
        resources=[service_arn],
        region=region,
        account=account,
        detail={
            "eventType": "ERROR" if failed else "INFO",
            "eventName": event_name,
            "deploymentId": deployment_id,
            "updatedAt": _iso(time.time()),
            "reason": reason or default_reason,
        },
    )


def codebuild_state_event(
    *,
    build_arn: str,
    project_name: str,
    status: str,
    source_version: str,
    environment_variables: Sequence[dict[str, str]] = (),
    region: str,
    account: str = ACCOUNT_ID,
) -> dict[str, Any]:
    """CodeBuild "Build State Change" with detail.build-status SUCCEEDED, FAILED, STOPPED..."""
    stream = build_arn.rsplit(":", 1)[-1]
    group = f"/aws/codebuild/{project_name}"
    return _envelope(
        source="aws.codebuild",
        detail_type="CodeBuild Build State Change",
        resources=[build_arn],
        region=region,
        account=account,
        detail={
            "build-status": status,
            "project-name": project_name,
            "build-id": build_arn,
            "current-phase": "COMPLETED",
            "current-phase-context": "[]",
            "version": "1",
            "additional-information": {
                "build-complete": status in ("SUCCEEDED", "FAILED", "STOPPED", "FAULT"),
                "source-version": source_version,
                "initiator": "branchenv",
                "environment": {
                    "type": "LINUX_CONTAINER",
                    "compute-type": "BUILD_GENERAL1_SMALL",
                    "image": "aws/codebuild/standard:7.0",
                    "privileged-mode": True,
                    "environment-variables": list(environment_variables),
                },
                "logs": {
                    "group-name": group,
                    "stream-name": stream,
                    "deep-link": (
                        f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
                        f"#logEvent:group={group};stream={stream}"
                    ),
                },
            },
        },
    )


def ecr_push_event(
    *,
    repository_name: str,
    image_tag: str,
    image_digest: str,
    region: str,
    account: str = ACCOUNT_ID,
) -> dict[str, Any]:
    """ECR "ECR Image Action" for a successful PUSH."""
    return _envelope(
        source="aws.ecr",
        detail_type="ECR Image Action",
        resources=[],
        region=region,
        account=account,
        detail={
            "result": "SUCCESS",
            "repository-name": repository_name,
            "image-digest": image_digest,
            "action-type": "PUSH",
            "image-tag": image_tag,
        },
    )


def scheduled_event(*, rule_arn: str, region: str, account: str = ACCOUNT_ID) -> dict[str, Any]:
    """The "Scheduled Event" EventBridge passes to a ``@app.schedule`` handler."""
    return _envelope(
        source="aws.events",
        detail_type="Scheduled Event",
        resources=[rule_arn],
        region=region,
        account=account,
        detail={},
    )


def _envelope(
    *,
    source: str,
    detail_type: str,
    resources: list[str],
    region: str,
    account: str,
    detail: dict[str, Any],
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": _iso(time.time()),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
