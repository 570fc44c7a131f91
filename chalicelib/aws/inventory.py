"""The leak audit: every AWS resource (and priority claim) that says it belongs to ``app``.

Lifecycle tests ("nothing tagged as ours is left over"), the reaper and the demo all ask
the same question, so it is answered once here, through the gateways. Ownership is read
from tags (``branchenv:managed``, ``branchenv:app``, ``branchenv:env``), the TXT owner
record beside a DNS alias, the ``branch-<slug>`` ECR tag, and the store's priority claims.
This module only reads: it must never delete or change anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chalicelib.aws.ecr import Images
from chalicelib.aws.ecs import Containers
from chalicelib.aws.elbv2 import LoadBalancing
from chalicelib.aws.route53 import Dns
from chalicelib.domain.environments import EnvironmentStore

ENV_TAG = "branchenv:env"
BRANCH_TAG_PREFIX = "branch-"
KINDS = (
    "service",
    "task_definition",
    "target_group",
    "listener_rule",
    "dns_record",
    "image_tag",
    "priority_claim",
)


@dataclass(frozen=True)
class ManagedResource:
    """One thing branchenv made: its kind, an identifier to find it by, its environment."""

    kind: str  # one of KINDS
    identifier: str
    env: str | None  # the branchenv:env slug it belongs to


class Inventory:
    """Lists what installation ``app`` owns across ECS, ELB, Route53, ECR and the store."""

    def __init__(
        self,
        *,
        app: str,
        dns: Dns,
        load_balancing: LoadBalancing,
        containers: Containers,
        images: Images,
        store: EnvironmentStore,
        listener_arns: Sequence[str],
    ) -> None:
        self._app = app
        self._dns = dns
        self._load_balancing = load_balancing
        self._containers = containers
        self._images = images
        self._store = store
        self._listener_arns = tuple(listener_arns)

    def managed(self, slug: str | None = None) -> list[ManagedResource]:
        """Everything owned by this installation; only environment ``slug``'s when given."""
        found = list(self._everything())
        return [r for r in found if slug is None or r.env == slug]

    def _everything(self) -> Iterator[ManagedResource]:
        app = self._app
        for service in self._containers.list_managed_services(app):
            yield ManagedResource("service", service.arn, service.tags.get(ENV_TAG))
        for definition in self._containers.list_managed_task_definitions(app):
            yield ManagedResource("task_definition", definition.arn, definition.tags.get(ENV_TAG))
        for group in self._load_balancing.list_managed_target_groups(app):
            yield ManagedResource("target_group", group.arn, group.tags.get(ENV_TAG))
        for listener_arn in self._listener_arns:
            for rule in self._load_balancing.list_managed_rules(listener_arn, app):
                yield ManagedResource("listener_rule", rule.arn, rule.tags.get(ENV_TAG))
        for record in self._dns.list_owned(app):
            yield ManagedResource("dns_record", record.host, _owner_env(record.owner))
        for tag in self._images.list_tags(BRANCH_TAG_PREFIX):
            yield ManagedResource("image_tag", tag, tag.removeprefix(BRANCH_TAG_PREFIX))
        for listener_arn, priority, holder in self._store.priority_claims():
            yield ManagedResource("priority_claim", f"{listener_arn}#{priority}", holder)


def _owner_env(owner: str | None) -> str | None:
    """The ``env=`` part of a TXT owner value such as ``heritage=branchenv,app=a,env=s``."""
    for part in (owner or "").split(","):
        key, _, value = part.partition("=")
        if key == "env" and value:
            return value
    return None
