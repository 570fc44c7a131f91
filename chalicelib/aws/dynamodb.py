"""The DynamoDB implementation of the environment store (the only DynamoDB caller).

Single table, string partition key ``pk``:
- ``env#<slug>``: one environment; ``version`` for optimistic concurrency, ``body`` the
  record as JSON, ``expires_at`` the TTL attribute once the environment is deleted;
- ``priority#<listener arn>#<n>``: a listener-rule priority claim, ``slug`` its holder
  (claimed and released by conditional writes of that item alone);
- ``rules#<listener arn>``: ``held``, how many claims that listener has, kept beside each
  claim and release, read for the whole pool in one BatchGetItem to place a new
  environment where there is most room (a hint: it never decides who holds a priority);
- ``marker#<name>``: a small record of the installation's own (chalicelib/aws/markers.py,
  e.g. which dead letters were already announced), never returned by the store's scans.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate
from chalicelib.domain.environments import (
    ConcurrentUpdate,
    Environment,
    EnvironmentStore,
    Snapshot,
    StoreError,
)

ENV_PREFIX = "env#"
CLAIM_PREFIX = "priority#"
COUNT_PREFIX = "rules#"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem (the API's limit)
TRANSACTION_LIMIT = 100  # items per TransactWriteItems (the API's limit)


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
        written, item, condition = self._conditional_item(env)
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"{env.slug}: version {env.version} is stale") from exc
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        return written

    def put_claiming(
        self, env: Environment, listener_arn: str, priority: int
    ) -> Environment | None:
        """One TransactWriteItems: the new claim, its listener's count and the record. A
        claim already there (this slug's own, from an interrupted run, or another's) falls
        back to the claim alone, then the record."""
        written, record = self._record_write(env)
        claim = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": {"S": _claim_key(listener_arn, priority)},
                    "slug": {"S": env.slug},
                    "listener_arn": {"S": listener_arn},
                    "priority": {"N": str(priority)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        failed = self._transact([claim, self._count_change(listener_arn, +1), record])
        if failed is None:
            return written
        if failed == 2:
            raise ConcurrentUpdate(f"{env.slug}: version {env.version} is stale")
        return super().put_claiming(env, listener_arn, priority)

    def put_releasing(self, env: Environment, claims: Sequence[tuple[str, int]]) -> Environment:
        """One TransactWriteItems: each claim deleted (if this slug holds it), its count, and
        the record. A claim gone already or held by another falls back to releasing one at a
        time, then the record."""
        unique = sorted(set(claims))
        # One count item per listener: a transaction may touch an item only once.
        per_listener = Counter(listener_arn for listener_arn, _ in unique)
        if not unique or len(unique) + len(per_listener) + 1 > TRANSACTION_LIMIT:
            return super().put_releasing(env, unique)
        written, record = self._record_write(env)
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": _claim_key(listener_arn, priority)}},
                    "ConditionExpression": "slug = :slug",
                    "ExpressionAttributeValues": {":slug": {"S": env.slug}},
                }
            }
            for listener_arn, priority in unique
        ]
        items += [self._count_change(arn, -held) for arn, held in sorted(per_listener.items())]
        failed = self._transact([*items, record])
        if failed is None:
            return written
        if failed == len(items):
            raise ConcurrentUpdate(f"{env.slug}: version {env.version} is stale")
        return super().put_releasing(env, claims)

    def _record_write(self, env: Environment) -> tuple[Environment, dict[str, Any]]:
        """The record's conditional Put as a transaction item, and the record it writes."""
        written, item, condition = self._conditional_item(env)
        return written, {"Put": {"TableName": self._table, "Item": item, **condition}}

    def _count_change(self, listener_arn: str, change: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": COUNT_PREFIX + listener_arn}},
                "UpdateExpression": "ADD held :change",
                "ExpressionAttributeValues": {":change": {"N": str(change)}},
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> int | None:
        """Run the items as one transaction: None when it committed, else the index of the
        first item whose condition failed (DynamoDB API reference, TransactWriteItems:
        CancellationReasons are in request order)."""
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise StoreError(str(translate(exc, "TransactWriteItems"))) from exc
            reasons = exc.response.get("CancellationReasons") or []
            for index, reason in enumerate(reasons):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return index
            raise StoreError(str(translate(exc, "TransactWriteItems"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "TransactWriteItems"))) from exc
        return None

    @staticmethod
    def _conditional_item(
        env: Environment,
    ) -> tuple[Environment, dict[str, Any], dict[str, Any]]:
        """The record's item at the next version, and the condition that the stored one
        is still ``env.version`` (or absent, for a new record)."""
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
        return written, item, condition

    def scan(self) -> Iterator[Environment]:
        for item in self._scan_prefix(ENV_PREFIX):
            yield _environment(item)

    def claim_priority(self, listener_arn: str, priority: int, slug: str) -> bool:
        try:
            answer = self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _claim_key(listener_arn, priority)},
                    "slug": {"S": slug},
                    "listener_arn": {"S": listener_arn},
                    "priority": {"N": str(priority)},
                },
                ConditionExpression="attribute_not_exists(pk) OR slug = :slug",
                ExpressionAttributeValues={":slug": {"S": slug}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "PutItem"))) from exc
        if not answer.get("Attributes"):  # a new claim, not this slug's own again
            self._count(listener_arn, +1)
        return True

    def release_priority(self, listener_arn: str, priority: int, slug: str) -> None:
        try:
            answer = self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": _claim_key(listener_arn, priority)}},
                ConditionExpression="slug = :slug",
                ExpressionAttributeValues={":slug": {"S": slug}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return  # gone, or another environment holds it now: not ours to release
            raise StoreError(str(translate(exc, "DeleteItem"))) from exc
        except BotoCoreError as exc:
            raise StoreError(str(translate(exc, "DeleteItem"))) from exc
        if answer.get("Attributes"):
            self._count(listener_arn, -1)

    def _count(self, listener_arn: str, change: int) -> None:
        """Keep the listener's count of claims: a hint for placement only (an interruption
        between a claim and its count leaves it one off, which costs nothing but balance)."""
        self._call(
            "UpdateItem",
            self._client.update_item,
            TableName=self._table,
            Key={"pk": {"S": COUNT_PREFIX + listener_arn}},
            UpdateExpression="ADD held :change",
            ExpressionAttributeValues={":change": {"N": str(change)}},
        )

    def priority_claims(self) -> Iterator[tuple[str, int, str]]:
        for item in self._scan_prefix(CLAIM_PREFIX):
            yield _claim_of(item)

    def occupancy(self, listener_arns: Sequence[str]) -> dict[str, int]:
        counts = dict.fromkeys(listener_arns, 0)
        for start in range(0, len(listener_arns), BATCH_GET_LIMIT):
            batch = listener_arns[start : start + BATCH_GET_LIMIT]
            keys = [{"pk": {"S": COUNT_PREFIX + arn}} for arn in batch]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._call(
                    "BatchGetItem", self._client.batch_get_item, RequestItems=request
                )
                for item in answer.get("Responses", {}).get(self._table, []):
                    listener = item["pk"]["S"].removeprefix(COUNT_PREFIX)
                    counts[listener] = max(0, int(item.get("held", {}).get("N", "0")))
                request = answer.get("UnprocessedKeys") or {}
        return counts

    def snapshot(self) -> Snapshot:
        """Every environment record and every claim, in one scan of the table."""
        envs: list[Environment] = []
        claims: list[tuple[str, int, str]] = []
        for item in self._scan_prefix(""):
            key = item["pk"]["S"]
            if key.startswith(ENV_PREFIX):
                envs.append(_environment(item))
            elif key.startswith(CLAIM_PREFIX):
                claims.append(_claim_of(item))
        return Snapshot(tuple(envs), tuple(claims))

    def _scan_prefix(self, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        if prefix:
            kwargs["FilterExpression"] = "begins_with(pk, :prefix)"
            kwargs["ExpressionAttributeValues"] = {":prefix": {"S": prefix}}
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


def _claim_of(item: dict[str, Any]) -> tuple[str, int, str]:
    return item["listener_arn"]["S"], int(item["priority"]["N"]), item["slug"]["S"]


def _environment(item: dict[str, Any]) -> Environment:
    env = Environment.from_json(json.loads(item["body"]["S"]))
    return replace(env, version=int(item["version"]["N"]))
