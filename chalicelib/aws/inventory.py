"""The leak audit: every AWS resource (and priority claim) that says it belongs to ``app``.

Lifecycle tests ("nothing tagged as ours is left over"), the reaper and the demo all ask
the same question, so it is answered once here, through the gateways. Ownership is read
from tags (``branchenv:managed``, ``branchenv:app``, ``branchenv:env``), the TXT owner
record beside a DNS alias, the ``branch-<slug>`` ECR tag, and the store's priority claims.
This module only reads: it must never delete or change anything.

What it reads costs what the installation holds, never what the region holds:
- target groups and services come from one paged Resource Groups Tagging API
  ``GetResources`` filtered by branchenv's tags (with their tags: no DescribeTags);
- task definitions by family prefix (``<app>-``), rules by one DescribeRules per listener
  (a rule's host names its environment), DNS from the zone, image tags from the repository.
Listing by prefix or by host only finds *candidates*; a candidate the caller does not
``trust`` is confirmed exactly before it is reported: a service must be ACTIVE, as
ListServices would show it (GetResources lists what is or was tagged, a deleted service
included), a task definition's revisions and a rule must carry our tags. The reaper trusts
what belongs to a live environment (it is not going to remove it), so a sweep with nothing
to do confirms nothing; the leak audit trusts nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from chalicelib.aws.ecr import Images
from chalicelib.aws.ecs import Containers
from chalicelib.aws.elbv2 import LoadBalancing
from chalicelib.aws.route53 import Dns
from chalicelib.aws.tagging import ECS_SERVICE, TARGET_GROUP, TaggedResources
from chalicelib.domain.environments import EnvironmentStore
from chalicelib.domain.resources import ManagedResource, ResourceKind

ENV_TAG = "branchenv:env"
MANAGED_TAG = "branchenv:managed"
APP_TAG = "branchenv:app"
BRANCH_TAG_PREFIX = "branch-"

Trust = Callable[[ManagedResource], bool]
Claim = tuple[str, int, str]  # (listener_arn, priority, slug)


def _trust_nothing(_: ManagedResource) -> bool:
    return False


class Inventory:
    """Lists what installation ``app`` owns across ECS, ELB, Route53, ECR and the store."""

    def __init__(
        self,
        *,
        app: str,
        domain: str,
        dns: Dns,
        load_balancing: LoadBalancing,
        containers: Containers,
        images: Images,
        store: EnvironmentStore,
        tagged: TaggedResources,
        listener_arns: Sequence[str],
    ) -> None:
        self._app = app
        self._domain = domain
        self._dns = dns
        self._load_balancing = load_balancing
        self._containers = containers
        self._images = images
        self._store = store
        self._tagged = tagged
        self._listener_arns = tuple(listener_arns)

    def managed(
        self,
        slug: str | None = None,
        *,
        trust: Trust = _trust_nothing,
        claims: Iterable[Claim] | None = None,
    ) -> list[ManagedResource]:
        """Everything owned by this installation; only environment ``slug``'s when given.
        A candidate for which ``trust`` answers True is reported without being confirmed;
        ``claims`` spares a read of the store when the caller has them already."""
        found = list(self._everything(trust, claims))
        return [r for r in found if slug is None or r.env == slug]

    def _everything(
        self, trust: Trust, claims: Iterable[Claim] | None
    ) -> Iterator[ManagedResource]:
        yield from self._tagged_resources(trust)
        yield from self._task_definitions(trust)
        yield from self._rules(trust)
        for record in self._dns.list_owned(self._app):
            yield ManagedResource(ResourceKind.DNS_RECORD, record.host, _owner_env(record.owner))
        for tag in self._images.list_tags(BRANCH_TAG_PREFIX):
            yield ManagedResource(ResourceKind.IMAGE_TAG, tag, tag.removeprefix(BRANCH_TAG_PREFIX))
        held = self._store.priority_claims() if claims is None else claims
        for listener_arn, priority, holder in held:
            yield ManagedResource(ResourceKind.PRIORITY_CLAIM, f"{listener_arn}#{priority}", holder)

    def _tagged_resources(self, trust: Trust) -> Iterator[ManagedResource]:
        services: dict[str, ManagedResource] = {}
        in_cluster = f":service/{self._containers.cluster}/"
        for item in self._tagged.managed(self._app, (TARGET_GROUP, ECS_SERVICE)):
            env = item.tags.get(ENV_TAG)
            if item.resource_type == TARGET_GROUP:
                yield ManagedResource(ResourceKind.TARGET_GROUP, item.arn, env)
            elif in_cluster in item.arn:
                services[item.arn] = ManagedResource(ResourceKind.SERVICE, item.arn, env)
        unsure = [arn for arn, resource in services.items() if not trust(resource)]
        live = {s.arn for s in self._containers.active_services(unsure)} if unsure else set()
        for arn, resource in services.items():
            if arn in live or arn not in unsure:
                yield resource

    def _task_definitions(self, trust: Trust) -> Iterator[ManagedResource]:
        prefix = f"{self._app}-"
        owner = {MANAGED_TAG: "true", APP_TAG: self._app}
        for family in self._containers.families(prefix):
            candidate = ManagedResource(
                ResourceKind.TASK_DEFINITION, family, family.removeprefix(prefix)
            )
            if trust(candidate):
                yield candidate
                continue
            for definition in self._containers.owned_revisions(family, owner):
                yield ManagedResource(
                    ResourceKind.TASK_DEFINITION, definition.arn, definition.tags.get(ENV_TAG)
                )

    def _rules(self, trust: Trust) -> Iterator[ManagedResource]:
        suffix = f".{self._domain}"
        for listener_arn in self._listener_arns:
            unsure: list[str] = []
            for rule in self._load_balancing.rules_without_tags(listener_arn):
                hosts = [h for h in rule.hosts if h.lower().endswith(suffix)]
                env = hosts[0][: -len(suffix)].lower() if len(hosts) == 1 else None
                candidate = ManagedResource(ResourceKind.LISTENER_RULE, rule.arn, env)
                if env is not None and trust(candidate):
                    yield candidate
                else:
                    unsure.append(rule.arn)
            for arn, tags in self._load_balancing.tags_of(unsure).items():
                if tags.get(MANAGED_TAG) == "true" and tags.get(APP_TAG) == self._app:
                    yield ManagedResource(ResourceKind.LISTENER_RULE, arn, tags.get(ENV_TAG))


def _owner_env(owner: str | None) -> str | None:
    """The ``env=`` part of a TXT owner value such as ``heritage=branchenv,app=a,env=s``."""
    for part in (owner or "").split(","):
        key, _, value = part.partition("=")
        if key == "env" and value:
            return value
    return None
