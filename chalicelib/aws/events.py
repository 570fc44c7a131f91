"""EventBridge (the only caller): puts branchenv's own events on the installation's bus.

Other tools subscribe to these with rules on the bus, so they never need to touch
branchenv's code. This gateway only sends; it must never put a secret in an event.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import AwsError, translate

SOURCE = "branchenv"
STATE_CHANGE = "Environment State Change"


class EventPublisher:
    """Sends events to one EventBridge bus (a name or an ARN)."""

    def __init__(self, client: Any, bus: str) -> None:
        self._client = client
        self._bus = bus

    def publish(self, detail_type: str, detail: dict[str, Any], *, source: str = SOURCE) -> str:
        """Put one event on the bus; return its event id. Raises AwsError if EventBridge
        refused the call or the entry."""
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
            "EventBusName": self._bus,
        }
        try:
            answer = self._client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "PutEvents", not_found=("ResourceNotFoundException",)) from exc
        result = answer.get("Entries", [{}])[0]
        if answer.get("FailedEntryCount", 0) or "EventId" not in result:
            code = str(result.get("ErrorCode", ""))
            raise AwsError(
                f"PutEvents failed: {code}: {result.get('ErrorMessage', '')}".strip(),
                code=code,
                operation="PutEvents",
            )
        return str(result["EventId"])
