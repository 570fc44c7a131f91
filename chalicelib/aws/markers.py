"""Small named facts branchenv remembers between runs, one DynamoDB item each.

A marker is a little JSON object kept in the environments table under ``marker#<name>``:
a key no environment (``env#<slug>``) and no priority claim (``priority#…``) can take,
and one the store's scans (by those prefixes) never return. Each write names the version
it read, so two writers cannot both think they made the same change (DynamoDB condition
expressions: DynamoDB Developer Guide, "Condition expressions"). The reaper's dead-letter
alert remembers here which dead letters people were already told about.

Must never: hold a secret or a message body; raise botocore's exceptions (AwsError).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate

MARKER_PREFIX = "marker#"


@dataclass(frozen=True)
class Marker:
    """What a marker holds, and the version to name when replacing it (0: none yet)."""

    value: dict[str, Any] = field(default_factory=dict)
    version: int = 0


class Markers(Protocol):
    """Where markers are kept (DynamoMarkers; InMemoryMarkers in tests and without AWS)."""

    def get(self, name: str) -> Marker: ...

    def put(self, name: str, value: dict[str, Any], *, version: int) -> bool:
        """Replace marker ``name`` if it is still at ``version``; False if another
        writer changed it first."""
        ...


class DynamoMarkers:
    """Markers as items of the environments table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, name: str) -> Marker:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": MARKER_PREFIX + name}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "GetItem") from exc
        item = answer.get("Item")
        if not item:
            return Marker()
        return Marker(json.loads(item["body"]["S"]), int(item["version"]["N"]))

    def put(self, name: str, value: dict[str, Any], *, version: int) -> bool:
        item = {
            "pk": {"S": MARKER_PREFIX + name},
            "version": {"N": str(version + 1)},
            "body": {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)},
        }
        if version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(version)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise translate(exc, "PutItem") from exc
        except BotoCoreError as exc:
            raise translate(exc, "PutItem") from exc
        return True


class InMemoryMarkers:
    """Markers in a dict: for tests, and for a check with no table to remember in."""

    def __init__(self) -> None:
        self.items: dict[str, Marker] = {}

    def get(self, name: str) -> Marker:
        return self.items.get(name, Marker())

    def put(self, name: str, value: dict[str, Any], *, version: int) -> bool:
        if self.get(name).version != version:
            return False
        self.items[name] = Marker(json.loads(json.dumps(value)), version + 1)
        return True
