"""The SQS FIFO work queue (the only SQS caller): intake and event handlers enqueue here.

Messages are grouped per environment (MessageGroupId) so one branch's work is processed
in order, one message at a time, while other branches proceed in parallel; GitHub's
``X-GitHub-Delivery`` is the deduplication id, so a redelivered webhook is dropped by SQS.
The worker shortens a waiting message's visibility timeout here (so a wait costs its own
backoff, not the queue's timeout) and reads the queue's maxReceiveCount; the reaper peeks
at the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate

log = logging.getLogger(__name__)

# ChangeMessageVisibility: "The minimum is 0 seconds. The maximum is 12 hours." (SQS API
# Reference, ChangeMessageVisibility).
MAX_VISIBILITY_SECONDS = 12 * 3600
# The codes SQS answers ChangeMessageVisibility with when the receipt handle no longer
# names an in-flight message: the handle is malformed or of another queue
# (ReceiptHandleIsInvalid), or the message is not in flight (MessageNotInflight; the
# query-compatible code is prefixed ``AWS.SimpleQueueService.``) — SQS API Reference,
# ChangeMessageVisibility, "Errors". An expired handle comes back as InvalidParameterValue
# "Value … for parameter ReceiptHandle is invalid. Reason: The receipt handle has
# expired." (AWS Knowledge Center, "Why do I get a ReceiptHandleIsInvalid or
# InvalidParameterValue error when I try to delete a message from my SQS queue?").
STALE_HANDLE_CODES = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)


class WorkQueue:
    """Sends work messages to the FIFO queue; changes the visibility of one in flight."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._redrive: dict[str, Any] | None = None

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

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Make the received message visible again ``seconds`` from now (SQS counts from
        this call, not from the receive: SQS API Reference, ChangeMessageVisibility).

        A receipt handle that no longer names a message in flight (expired, already
        visible again, or deleted) is logged and ignored: SQS will deliver the message
        again by itself, which is all a shorter timeout was for. Any other failure raises
        AwsError; a ``seconds`` outside 0..43200 raises ValueError before any call.
        """
        if not 0 <= seconds <= MAX_VISIBILITY_SECONDS:
            raise ValueError(
                f"visibility timeout {seconds} s is outside SQS's 0..{MAX_VISIBILITY_SECONDS} s"
            )
        try:
            self._client.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except ClientError as exc:
            if _stale_handle(exc):
                log.info(
                    "ChangeMessageVisibility ignored: the message is no longer in flight (%s)",
                    exc.response.get("Error", {}).get("Code", ""),
                )
                return
            raise translate(exc, "ChangeMessageVisibility") from exc
        except BotoCoreError as exc:
            raise translate(exc, "ChangeMessageVisibility") from exc

    def max_receive_count(self) -> int | None:
        """The work queue's RedrivePolicy ``maxReceiveCount`` (read once per instance);
        None when the queue has no redrive policy."""
        value = self._redrive_policy().get("maxReceiveCount")
        return int(value) if value is not None else None

    def _redrive_policy(self) -> dict[str, Any]:
        if self._redrive is None:
            self._redrive = redrive_policy(self._client, self._queue_url)
        return self._redrive


def redrive_policy(client: Any, queue_url: str) -> dict[str, Any]:
    """The queue's RedrivePolicy as a dict (empty without one). SQS returns it as a JSON
    string whose maxReceiveCount may be a number or a string (SQS API Reference,
    SetQueueAttributes, RedrivePolicy)."""
    try:
        answer = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "GetQueueAttributes") from exc
    policy = answer.get("Attributes", {}).get("RedrivePolicy")
    if not policy:
        return {}
    parsed = json.loads(policy)
    return parsed if isinstance(parsed, dict) else {}


def _stale_handle(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in STALE_HANDLE_CODES:
        return True
    message = str(error.get("Message", "")).lower().replace(" ", "")
    return code == "InvalidParameterValue" and "receipthandle" in message


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue. SQS moves a message there "with its original
    message ID" (SQS Developer Guide, "Using dead-letter queues in Amazon SQS"), so the id
    tells a dead letter already seen from a new one."""

    message_id: str
    body: str


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
            target = redrive_policy(self._client, self._work_queue_url).get("deadLetterTargetArn")
            if not target:
                return None
            name = str(target).rsplit(":", 1)[-1]
            # A redrive target is in the same account and region, so at the same address.
            self._url = f"{self._work_queue_url.rsplit('/', 1)[0]}/{name}"
        return self._url

    def peek(self, max_messages: int = 10) -> list[str]:
        """Bodies of up to ``max_messages`` dead letters, left in the queue and visible."""
        return [letter.body for letter in self.peek_letters(max_messages)]

    def peek_letters(self, max_messages: int = 10) -> list[DeadLetter]:
        """Up to ``max_messages`` (at most 10: one ReceiveMessage) dead letters with their
        ids, left in the queue and visible (VisibilityTimeout 0)."""
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
        return [
            DeadLetter(str(message["MessageId"]), str(message["Body"]))
            for message in answer.get("Messages", [])
        ]

    def count(self) -> int:
        """How many dead letters wait, visible or in flight: ApproximateNumberOfMessages
        plus ApproximateNumberOfMessagesNotVisible (SQS API Reference, GetQueueAttributes;
        approximate, as SQS says). 0 without a dead-letter queue."""
        url = self.url()
        if url is None:
            return 0
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            answer = self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "GetQueueAttributes") from exc
        attributes = answer.get("Attributes", {})
        return sum(int(attributes.get(name, 0)) for name in names)
