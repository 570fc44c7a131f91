"""The priority claim: a listener rule priority held in the store for one environment.

Found in the store (its claims, by listener and priority); the record keeps its listener
and priority. A claim is written in the same store write that records it
(``put_claiming``), so no interruption leaves a claim the record does not name, and it
is released with the run's last write (``put_releasing``), last of a teardown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chalicelib.aws.errors import Conflict
from chalicelib.domain.environments import ConcurrentUpdate
from chalicelib.domain.names import short_hash
from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import ClaimPriority, ReleasePriority, Target
from chalicelib.engine.converge.progress import Progress

MAX_PRIORITY = 50_000


def run_claim(ctx: Context, step: ClaimPriority, progress: Progress, target: Target) -> None:
    claim(ctx, progress, step.listener_arn, skip=())


def claim(ctx: Context, progress: Progress, listener_arn: str, skip: Sequence[int]) -> int:
    """Claim a free priority on ``listener_arn`` and record it in the same write (the
    store's ``put_claiming``), so an interrupted run finds its claim, never leaks it."""
    slug = progress.env.slug
    start = int(short_hash(slug), 16) % MAX_PRIORITY
    for offset in range(MAX_PRIORITY):
        candidate = (start + offset) % MAX_PRIORITY + 1
        if candidate in skip:
            continue
        naming = replace(progress.env, listener_arn=listener_arn, priority=candidate)
        try:
            written = ctx.store.put_claiming(naming, listener_arn, candidate)
        except ConcurrentUpdate:
            # A webhook wrote the record meanwhile: claim alone, then the converger's
            # write that keeps the webhook's desired state.
            if not ctx.store.claim_priority(listener_arn, candidate, slug):
                continue
            ctx.persist(progress, listener_arn=listener_arn, priority=candidate)
        else:
            if written is None:
                continue
            progress.env, progress.unsaved = written, False
        progress.listener_arn, progress.priority = listener_arn, candidate
        return candidate
    raise Conflict(f"no free listener rule priority on {listener_arn}")


def run_release(ctx: Context, step: ReleasePriority, progress: Progress, target: Target) -> None:
    progress.releases.append((step.listener_arn, step.priority))
    if (step.listener_arn, step.priority) == (progress.listener_arn, progress.priority):
        progress.priority = None
        progress.listener_arn = None


def _release_leftover(identifier: str) -> ReleasePriority:
    listener_arn, _, priority = identifier.rpartition("#")
    return ReleasePriority(listener_arn, int(priority))


KIND = KindSpec(
    kind=ResourceKind.PRIORITY_CLAIM,
    steps=(ClaimPriority, ReleasePriority),
    leftover=_release_leftover,
)
