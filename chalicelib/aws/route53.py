"""Route53 (the only caller): the alias record ``<slug>.<domain>`` → ALB and its owner TXT.

Route53 records carry no tags, so ownership is proved by a TXT record at the same name
whose value is ``heritage=branchenv,app=<app>,env=<slug>`` (built by
:attr:`chalicelib.domain.names.EnvironmentNames.dns_owner`). The alias and its TXT are always
written and deleted together in one change batch; a new host is written with CREATE, which
Route53 refuses when anything is at the name, so nobody's record is ever overwritten. This
module must never delete a record it cannot prove is ours: :meth:`Dns.delete_alias` only
takes a record read back by :meth:`Dns.find_alias` or :meth:`Dns.list_owned`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import Conflict, translate

HERITAGE = "heritage=branchenv"
ZONE_NOT_FOUND = ("NoSuchHostedZone",)
# Route53 answers a DELETE of a record that is not there with InvalidChangeBatch "Tried to
# delete resource record set [...] but it was not found"; a DELETE whose values differ from
# the current ones gets the same code with "values provided do not match" (a Conflict).
INVALID_BATCH = "InvalidChangeBatch"
GONE_MESSAGE = "not found"
# A CREATE of a record that exists: InvalidChangeBatch "Tried to create resource record set
# [name='x.', type='A'] but it already exists" (Route53 API reference, ChangeResourceRecordSets).
EXISTS_MESSAGE = "already exists"


class AlreadyExists(Conflict):
    """A record is already at the name (ours or not: read it with :meth:`Dns.find_alias`)."""


@dataclass(frozen=True)
class AliasRecord:
    """An A alias at ``host`` pointing at a load balancer, with the owner TXT beside it."""

    host: str
    alb_dns_name: str
    alb_zone_id: str
    owner: str | None


class Dns:
    """Alias records of preview hosts in one hosted zone."""

    def __init__(self, client: Any, hosted_zone_id: str) -> None:
        self._client = client
        self._zone_id = hosted_zone_id

    def find_alias(self, host: str) -> AliasRecord | None:
        """The alias at ``host`` (with its owner TXT, if any); None when there is none."""
        name = _fqdn(host)
        page = self._list(StartRecordName=name, StartRecordType="A", MaxItems="10")
        # Records are sorted by name then type, so the A and the TXT at `name` come first.
        records = [r for r in page.get("ResourceRecordSets", []) if r["Name"] == name]
        alias = _alias_from(host, records)
        if alias is None and records:
            # Another kind of record (plain A, CNAME, TXT...) holds the name: reported as
            # a record with no target, so converge sees it is taken and never writes over it.
            txt = next((r for r in records if r["Type"] == "TXT"), None)
            owner = _unquote(txt["ResourceRecords"][0]["Value"]) if txt else None
            return AliasRecord(_bare(host), "", "", owner)
        return alias

    def create_alias(self, host: str, alb_dns_name: str, alb_zone_id: str, owner: str) -> None:
        """Create the alias and its owner TXT in one change batch; AlreadyExists when any
        record is at the name already (nothing is then written: a batch is atomic), so a
        record someone else made is never overwritten."""
        record = AliasRecord(_bare(host), alb_dns_name, alb_zone_id, owner)
        try:
            self._change("CREATE", record, comment=f"branchenv: route {record.host}")
        except Conflict as exc:
            if EXISTS_MESSAGE in str(exc):
                raise AlreadyExists(str(exc), code=exc.code, operation=exc.operation) from exc
            raise

    def upsert_alias(self, host: str, alb_dns_name: str, alb_zone_id: str, owner: str) -> None:
        """Create or update the alias and its owner TXT in one change batch."""
        record = AliasRecord(_bare(host), alb_dns_name, alb_zone_id, owner)
        self._change("UPSERT", record, comment=f"branchenv: route {record.host}")

    def delete_alias(self, record: AliasRecord) -> None:
        """Delete the alias and its owner TXT (exact current values); gone already is fine."""
        try:
            self._change("DELETE", record, comment=f"branchenv: remove {record.host}")
        except _AlreadyGone:
            return

    def list_owned(self, app: str) -> list[AliasRecord]:
        """Every alias in the zone whose owner TXT says it belongs to installation ``app``."""
        by_name: dict[str, list[dict[str, Any]]] = {}
        for record in self._all_records():
            by_name.setdefault(record["Name"], []).append(record)
        owned = []
        for name, records in by_name.items():
            alias = _alias_from(_bare(name), records)
            if alias is not None and alias.owner is not None and _owned_by(alias.owner, app):
                owned.append(alias)
        return owned

    def _all_records(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, str] = {}
        while True:
            page = self._list(**kwargs)
            yield from page.get("ResourceRecordSets", [])
            if not page.get("IsTruncated"):
                return
            kwargs = {
                "StartRecordName": page["NextRecordName"],
                "StartRecordType": page["NextRecordType"],
            }
            if page.get("NextRecordIdentifier"):
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def _list(self, **kwargs: str) -> dict[str, Any]:
        try:
            page: dict[str, Any] = self._client.list_resource_record_sets(
                HostedZoneId=self._zone_id, **kwargs
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "ListResourceRecordSets", not_found=ZONE_NOT_FOUND) from exc
        return page

    def _change(self, action: str, record: AliasRecord, *, comment: str) -> None:
        changes = [{"Action": action, "ResourceRecordSet": _alias_set(record)}]
        if record.owner is not None:
            changes.append({"Action": action, "ResourceRecordSet": _owner_set(record)})
        try:
            self._client.change_resource_record_sets(
                HostedZoneId=self._zone_id,
                ChangeBatch={"Comment": comment, "Changes": changes},
            )
        except ClientError as exc:
            if action == "DELETE" and _is_gone(exc):
                raise _AlreadyGone from exc
            raise translate(
                exc,
                "ChangeResourceRecordSets",
                not_found=ZONE_NOT_FOUND,
                conflict=(INVALID_BATCH,),
            ) from exc
        except BotoCoreError as exc:
            raise translate(exc, "ChangeResourceRecordSets") from exc


class _AlreadyGone(Exception):
    """The records to delete are not there (any more)."""


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == INVALID_BATCH and GONE_MESSAGE in str(error.get("Message", ""))


def _alias_from(host: str, records: list[dict[str, Any]]) -> AliasRecord | None:
    alias = next((r for r in records if r["Type"] == "A" and "AliasTarget" in r), None)
    if alias is None:
        return None
    txt = next((r for r in records if r["Type"] == "TXT"), None)
    owner = _unquote(txt["ResourceRecords"][0]["Value"]) if txt else None
    target = alias["AliasTarget"]
    return AliasRecord(
        host=_bare(host),
        alb_dns_name=_bare(target["DNSName"]),
        alb_zone_id=target["HostedZoneId"],
        owner=owner,
    )


def _alias_set(record: AliasRecord) -> dict[str, Any]:
    return {
        "Name": _fqdn(record.host),
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": record.alb_zone_id,
            "DNSName": record.alb_dns_name,
            "EvaluateTargetHealth": False,
        },
    }


def _owner_set(record: AliasRecord) -> dict[str, Any]:
    return {
        "Name": _fqdn(record.host),
        "Type": "TXT",
        "TTL": 300,
        "ResourceRecords": [{"Value": f'"{record.owner}"'}],
    }


def _owned_by(owner: str, app: str) -> bool:
    parts = owner.split(",")
    return HERITAGE in parts and f"app={app}" in parts


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."


def _bare(host: str) -> str:
    return host.rstrip(".")
