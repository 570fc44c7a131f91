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
