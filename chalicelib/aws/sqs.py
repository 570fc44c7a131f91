"""The SQS FIFO work queue (the only SQS caller): intake and event handlers enqueue here.

Messages are grouped per environment (MessageGroupId) so one branch's work is processed
in order, one message at a time, while other branches proceed in parallel; GitHub's
``X-GitHub-Delivery`` is the deduplication id, so a redelivered webhook is dropped by SQS.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate


class WorkQueue:
    """Sends work messages to the FIFO queue."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: dict[str, Any], *, group_id: str, dedup_id: str | None = None) -> str:
        """Enqueue ``message``; return the SQS message id. Without ``dedup_id`` the id is a
        hash of the body, so the same message sent twice within 5 minutes is kept once."""
        body = json.dumps(message, separators=(",", ":"), sort_keys=True)
        dedup = dedup_id or hashlib.sha256(body.encode()).hexdigest()
        try:
            answer = self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageGroupId=group_id,
                MessageDeduplicationId=dedup[:128],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "SendMessage") from exc
        return str(answer["MessageId"])


class DeadLetterQueue:
    """Reads (never deletes) the work queue's dead-letter queue, found through the work
    queue's redrive policy, so no setting can point at the wrong queue."""

    def __init__(self, client: Any, work_queue_url: str) -> None:
        self._client = client
        self._work_queue_url = work_queue_url
        self._url: str | None = None

    def url(self) -> str | None:
        """The dead-letter queue's URL; None when the work queue has no redrive policy."""
        if self._url is None:
            try:
                answer = self._client.get_queue_attributes(
                    QueueUrl=self._work_queue_url, AttributeNames=["RedrivePolicy"]
                )
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "GetQueueAttributes") from exc
            policy = answer.get("Attributes", {}).get("RedrivePolicy")
            if not policy:
                return None
            name = str(json.loads(policy)["deadLetterTargetArn"]).rsplit(":", 1)[-1]
            # A redrive target is in the same account and region, so at the same address.
            self._url = f"{self._work_queue_url.rsplit('/', 1)[0]}/{name}"
        return self._url

    def peek(self, max_messages: int = 10) -> list[str]:
        """Bodies of up to ``max_messages`` dead letters, left in the queue and visible."""
        url = self.url()
        if url is None:
            return []
        try:
            answer = self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max(1, min(max_messages, 10)),
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "ReceiveMessage") from exc
        return [str(message["Body"]) for message in answer.get("Messages", [])]
