"""The registry of resource kinds: one module per kind, listed here in teardown order.

Each module (see :mod:`.base` for what one declares) holds how its kind is found, what the
record keeps of it, the runners of its steps and how a leftover of it is removed. The
planner removes leftovers in :data:`REGISTRY`'s order, the reaper compares records with
the leak audit through it, and the tests take the list of kinds from it; the leak audit
(chalicelib/aws/inventory.py) reports the same
:class:`~chalicelib.domain.resources.ResourceKind` values. A new per-environment resource
is a new module here and a new ``ResourceKind`` member.
"""

from __future__ import annotations

from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds import (
    dns,
    images,
    priority,
    rule,
    service,
    target_group,
    task_definition,
)
from chalicelib.engine.converge.kinds.base import Context, KindSpec

# Teardown order: what routes traffic first (DNS, then the rule), then what serves it,
# then what the service used, the bookkeeping (the priority claim) last.
REGISTRY: tuple[KindSpec, ...] = (
    dns.KIND,
    rule.KIND,
    service.KIND,
    target_group.KIND,
    task_definition.KIND,
    images.KIND,
    priority.KIND,
)
_BY_KIND = {spec.kind: spec for spec in REGISTRY}


def spec_of(kind: ResourceKind) -> KindSpec:
    """The registry's entry for ``kind``."""
    return _BY_KIND[kind]


__all__ = ["REGISTRY", "Context", "KindSpec", "spec_of"]
