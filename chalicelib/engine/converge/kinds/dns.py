"""The DNS record: a Route53 alias at ``<slug>.<domain>`` with its TXT owner record.

Found by its host name; it is ours when the TXT owner record beside it names this
environment (``names.dns_owner``). The record keeps the load balancer it points at
(``dns_target``). Made first (DNS takes longest to settle) and removed first.
"""

from __future__ import annotations

from chalicelib.aws.route53 import AliasRecord, AlreadyExists
from chalicelib.domain.environments import Environment
from chalicelib.domain.names import EnvironmentNames
from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import (
    DeleteDns,
    DeleteDnsByHost,
    RetryLater,
    Target,
    UpsertDns,
)
from chalicelib.engine.converge.progress import Progress


def run_upsert(ctx: Context, step: UpsertDns, progress: Progress, target: Target) -> None:
    owner = target.names.dns_owner
    if not step.create:
        ctx.dns.upsert_alias(step.host, step.alb_dns_name, step.alb_zone_id, owner)
        return
    try:
        ctx.dns.create_alias(step.host, step.alb_dns_name, step.alb_zone_id, owner)
    except AlreadyExists as exc:
        there = ctx.dns.find_alias(step.host)
        if there is None or there.owner == owner:
            # Ours (from a run cut off after its CREATE, or half of a pair left by a
            # delete that did not finish), or nothing to be seen at the name after all
            # (every record type sorts at or after "A", so the listing would show one;
            # moto answers so after a batch it applied only in part): point it where it
            # belongs.
            ctx.dns.upsert_alias(step.host, step.alb_dns_name, step.alb_zone_id, owner)
            return
        # Someone's record appeared at the host since converge looked: the next run
        # observes it and stops the preview rather than write over it.
        raise RetryLater(f"a DNS record appeared at {step.host}; looking again") from exc


def run_delete(ctx: Context, step: DeleteDns, progress: Progress, target: Target) -> None:
    ctx.dns.delete_alias(step.record)


def run_delete_by_host(
    ctx: Context, step: DeleteDnsByHost, progress: Progress, target: Target
) -> None:
    record = ctx.dns.find_alias(step.host)
    if record is not None and record.owner == target.names.dns_owner:
        ctx.dns.delete_alias(record)


def find(ctx: Context, names: EnvironmentNames) -> AliasRecord | None:
    """The alias at the environment's host, with the owner its TXT record names."""
    return ctx.dns.find_alias(names.host)


def from_record(env: Environment, target: Target) -> AliasRecord | None:
    """The alias as the record keeps it: the load balancer it points at."""
    if not env.dns_target:
        return None
    names = target.names
    return AliasRecord(names.host, env.dns_target, target.listener.zone_id, names.dns_owner)


def _recorded(env: Environment, host: str) -> str | None:
    return host if env.dns_target else None


def _comparable(host: str) -> str:
    return host.rstrip(".").lower()


KIND = KindSpec(
    kind=ResourceKind.DNS_RECORD,
    steps=(UpsertDns, DeleteDns, DeleteDnsByHost),
    leftover=DeleteDnsByHost,
    recorded=_recorded,
    comparable=_comparable,
)
