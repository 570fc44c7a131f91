"""The DynamoDB implementation of the environment store (the only DynamoDB caller).

Single table, string partition key ``pk``:
- ``env#<slug>``: one environment; ``version`` for optimistic concurrency, ``body`` the
  record as JSON, ``expires_at`` the TTL attribute once the environment is deleted;
- ``priority#<listener arn>#<n>``: a listener-rule priority claim, ``slug`` its holder;
- ``marker#<name>``: a small record of the installation's own (chalicelib/aws/markers.py,
  e.g. which dead letters were already announced), never returned by the store's scans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate
from chalicelib.domain.environments import (
    ConcurrentUpdate,
    Environment,
    EnvironmentStore,
    StoreError,
)

ENV_PREFIX = "env#"
CLAIM_PREFIX = "priority#"


class DynamoEnvironmentStore(EnvironmentStore):
    """Environment records and priority claims in one DynamoDB table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, slug: str) -> Environment | None:
        item = self._call(
            "GetItem",
            self._client.get_item,
            TableName=self._table,
            Key={"pk": {"S": ENV_PREFIX + slug}},
            ConsistentRead=True,
        ).get("Item")
        return _environment(item) if item else None

    def put(self, env: Environment) -> Environment:
        written = replace(env, version=env.version + 1)
        item: dict[str, Any] = {
            "pk": {"S": ENV_PREFIX + env.slug},
            "version": {"N": str(written.version)},
            "status": {"S": written.status.value},
            "body": {"S": json.dumps(written.to_json(), separators=(",", ":"))},
        }
        if written.expires_at is not None:
            item["expires_at"] = {"N": str(written.expires_at)}
        if env.version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(env.version)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"{env.slug}: version {env.version} is stale") from exc
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        return written

    def scan(self) -> Iterator[Environment]:
        for item in self._scan_prefix(ENV_PREFIX):
            yield _environment(item)

    def claim_priority(self, listener_arn: str, priority: int, slug: str) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _claim_key(listener_arn, priority)},
                    "slug": {"S": slug},
                    "listener_arn": {"S": listener_arn},
                    "priority": {"N": str(priority)},
                },
                ConditionExpression="attribute_not_exists(pk) OR slug = :slug",
                ExpressionAttributeValues={":slug": {"S": slug}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        return True

    def release_priority(self, listener_arn: str, priority: int, slug: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": _claim_key(listener_arn, priority)}},
                ConditionExpression="attribute_not_exists(pk) OR slug = :slug",
                ExpressionAttributeValues={":slug": {"S": slug}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return  # another environment holds it now: not ours to release
            raise StoreError(str(translate(exc, "DeleteItem"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "DeleteItem"))) from exc

    def priority_claims(self) -> Iterator[tuple[str, int, str]]:
        for item in self._scan_prefix(CLAIM_PREFIX):
            yield item["listener_arn"]["S"], int(item["priority"]["N"]), item["slug"]["S"]

    def _scan_prefix(self, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._call("Scan", self._client.scan, **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _call(operation: str, method: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(str(translate(exc, operation))) from exc
        return result


def _claim_key(listener_arn: str, priority: int) -> str:
    return f"{CLAIM_PREFIX}{listener_arn}#{priority}"


def _environment(item: dict[str, Any]) -> Environment:
    env = Environment.from_json(json.loads(item["body"]["S"]))
    return replace(env, version=int(item["version"]["N"]))
