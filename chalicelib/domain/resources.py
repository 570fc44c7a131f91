"""The kinds of thing branchenv makes for one environment, and how one is named in a listing.

Every layer speaks of an environment's resources in these words: the leak audit
(chalicelib/aws/inventory.py) lists them, converge's registry of resource kinds
(chalicelib/engine/converge/kinds/) says how each is made, recorded, recognised as a
leftover and removed, the reaper compares them with the records, and the tests audit that
none is left. The members are declared in teardown order: what routes traffic goes first,
what holds it up after, the bookkeeping last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ResourceKind(StrEnum):
    """One kind of per-environment resource, in teardown order."""

    DNS_RECORD = "dns_record"  # the Route53 alias, with its TXT owner record
    LISTENER_RULE = "listener_rule"  # the host-header rule on the shared listener
    SERVICE = "service"  # the ECS service
    TARGET_GROUP = "target_group"  # the ELB target group the rule forwards to
    TASK_DEFINITION = "task_definition"  # the task definition family's revisions
    IMAGE_TAG = "image_tag"  # the branch-<slug> (and cache-<slug>) ECR tags
    PRIORITY_CLAIM = "priority_claim"  # the store's claim on a listener rule priority


@dataclass(frozen=True)
class ManagedResource:
    """One thing branchenv made: its kind, an identifier to find it by, its environment."""

    kind: ResourceKind
    identifier: str
    env: str | None  # the branchenv:env slug it belongs to
