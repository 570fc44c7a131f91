"""Amazon ECS (the only caller): task definitions and services of preview environments.

Tags come in and go out as ``dict[str, str]`` (ECS itself uses ``key``/``value`` lists).
This module must never deregister a task definition family or delete a service it was not
named; finding what belongs to whom is the caller's job, by the tags returned here.

Known differences between moto 5 and ECS, which tests must not rely on:
- moto records no service ``events`` (always empty) and never moves a deployment's
  ``rolloutState`` on by itself: it is COMPLETED at creation only when the environment
  variable MOTO_ECS_SERVICE_RUNNING >= desiredCount, IN_PROGRESS otherwise, and
  UpdateService does not start a new deployment (the PRIMARY deployment keeps its old
  task definition). The local event relay stands in for ECS's deployment events.
- moto's DescribeTaskDefinition by family returns the highest revision even when it is
  INACTIVE (ECS returns the latest ACTIVE one); :meth:`Containers.find_task_definition`
  checks the status so both behave the same.
- moto never raises ServiceNotActiveException; deleting an INACTIVE service succeeds.
- moto ignores paging parameters of ListServices and ListTaskDefinitions (one page).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import Conflict, call, translate

MANAGED_TAG = "branchenv:managed"
APP_TAG = "branchenv:app"
SERVICES_PER_DESCRIBE = 10
MAX_EVENTS = 5
LIVE_SERVICE_STATUSES = ("ACTIVE", "DRAINING")
SERVICE_GONE = ("ServiceNotFoundException", "ServiceNotActiveException")
NO_TASK_DEFINITION = "Unable to describe task definition"
# ECS refuses CreateService with InvalidParameterException "Creation of service was not
# idempotent" while a service of that name (with other settings) is still DRAINING.
NOT_IDEMPOTENT = "not idempotent"
# ECS refuses CreateService with InvalidParameterException "The target group with
# targetGroupArn ... does not have an associated load balancer." until the listener rule
# that forwards to it has propagated (the Terraform AWS provider retries this for 2 min).
NO_LOAD_BALANCER_YET = "does not have an associated load balancer"


class ServiceNameTaken(Conflict):
    """A service of that name is ACTIVE or DRAINING with other settings ("Creation of service
    was not idempotent"): read it to see whose it is and what state it is in."""


class NotOnLoadBalancerYet(Conflict):
    """The target group's listener rule has not reached ECS yet ("... does not have an
    associated load balancer"): it does within a short while."""


@dataclass(frozen=True)
class TaskDefinition:
    arn: str
    family: str
    revision: int
    image: str
    environment: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class Deployment:
    """One of a service's deployments (PRIMARY is the newest; ACTIVE ones are older)."""

    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition_arn: str
    rollout_state: str | None  # IN_PROGRESS | COMPLETED | FAILED
    rollout_reason: str | None


@dataclass(frozen=True)
class Service:
    name: str
    arn: str
    status: str  # ACTIVE | DRAINING | INACTIVE
    desired_count: int
    task_definition_arn: str
    tags: dict[str, str]
    rollout_state: str | None
    rollout_reason: str | None
    events: tuple[str, ...]  # newest first, at most 5
    deployments: tuple[Deployment, ...] = ()
    container_port: int | None = None  # of its (first) load balancer, as ECS registers targets

    @property
    def primary_deployment_id(self) -> str | None:
        """The newest deployment's id (the one a Create/UpdateService call just started)."""
        for deployment in self.deployments:
            if deployment.status == "PRIMARY":
                return deployment.id
        return None

    def failed_deployment_of(self, task_definition_arn: str) -> Deployment | None:
        """The deployment of ``task_definition_arn`` that ECS marked FAILED, if it still
        lists one (after a circuit-breaker rollback it stays listed until it drains)."""
        for deployment in self.deployments:
            failed = deployment.rollout_state == "FAILED"
            if failed and deployment.task_definition_arn == task_definition_arn:
                return deployment
        return None


class Containers:
    """Task definitions and services in one ECS cluster."""

    def __init__(self, client: Any, cluster: str) -> None:
        self._client = client
        self._cluster = cluster

    # --- task definitions ----------------------------------------------------------------

    def find_task_definition(self, family: str) -> TaskDefinition | None:
        """The latest ACTIVE revision of ``family`` with its tags; None when there is none."""
        found = self._describe_task_definition(family)
        if found is None or found[0].get("status") == "ACTIVE":
            return _task_definition(*found) if found else None
        latest = max(self._active_revisions(family), default=None, key=_revision_of)
        found = self._describe_task_definition(latest) if latest else None
        return _task_definition(*found) if found else None

    def register_task_definition(self, request: Mapping[str, Any]) -> TaskDefinition:
        """Register a revision; ``request`` is the full RegisterTaskDefinition kwargs."""
        answer = self._call(
            "RegisterTaskDefinition", self._client.register_task_definition, **request
        )
        tags = answer.get("tags") or list(request.get("tags", []))
        return _task_definition(answer["taskDefinition"], tags)

    def deregister_task_definitions(self, family: str) -> list[str]:
        """Deregister every ACTIVE revision of exactly ``family``; return their ARNs."""
        arns = list(self._active_revisions(family))
        for arn in arns:
            self._call(
                "DeregisterTaskDefinition",
                self._client.deregister_task_definition,
                taskDefinition=arn,
            )
        return arns

    @property
    def cluster(self) -> str:
        """The cluster every preview service runs in."""
        return self._cluster

    def active_services(self, names: Sequence[str]) -> list[Service]:
        """Those of the named services that are ACTIVE (with tags). A deleted service is
        DRAINING while its tasks stop, then INACTIVE; ListServices shows neither (ECS API
        reference, DeleteService), and neither is left running by whoever deleted it."""
        return [s for s in self.services(names) if s.status == "ACTIVE"]

    def deregister(self, arns: Sequence[str]) -> None:
        """Deregister these revisions; one already INACTIVE or gone is fine."""
        for arn in arns:
            try:
                self._client.deregister_task_definition(taskDefinition=arn)
            except ClientError as exc:
                if _code(exc) == "ClientException" and NO_TASK_DEFINITION in _message(exc):
                    continue
                raise translate(exc, "DeregisterTaskDefinition") from exc
            except BotoCoreError as exc:
                raise translate(exc, "DeregisterTaskDefinition") from exc

    def families(self, prefix: str) -> list[str]:
        """The task definition families starting with ``prefix`` that have an ACTIVE
        revision (ListTaskDefinitionFamilies' ``familyPrefix`` is a prefix)."""
        return list(self._paged_families(prefix))

    def owned_revisions(self, family: str, owner: Mapping[str, str]) -> list[TaskDefinition]:
        """The ACTIVE revisions of exactly ``family`` whose tags hold all of ``owner``."""
        found = []
        for arn in self._active_revisions(family):
            described = self._describe_task_definition(arn)
            definition = _task_definition(*described) if described else None
            if definition and all(definition.tags.get(k) == v for k, v in owner.items()):
                found.append(definition)
        return found

    def services(self, arns_or_names: Sequence[str]) -> list[Service]:
        """The services named (with tags), ten to a DescribeServices call."""
        found: list[Service] = []
        for start in range(0, len(arns_or_names), SERVICES_PER_DESCRIBE):
            found.extend(
                self._describe_services(arns_or_names[start : start + SERVICES_PER_DESCRIBE])
            )
        return found

    def deregister_owned_task_definitions(
        self, family: str, owner: Mapping[str, str], known: Collection[str] = ()
    ) -> list[str]:
        """Deregister the ACTIVE revisions of exactly ``family`` whose tags hold every key
        and value of ``owner``; a revision someone else registered there is left alone.
        A revision in ``known`` (the caller registered it) is not described first."""
        arns = []
        for arn in self._active_revisions(family):
            if arn in known:
                arns.append(arn)
                continue
            described = self._describe_task_definition(arn)
            tags = _task_definition(*described).tags if described else {}
            if all(tags.get(key) == value for key, value in owner.items()):
                arns.append(arn)
        for arn in arns:
            self._call(
                "DeregisterTaskDefinition",
                self._client.deregister_task_definition,
                taskDefinition=arn,
            )
        return arns

    def list_managed_task_definitions(self, app: str) -> list[TaskDefinition]:
        """Every ACTIVE revision tagged as installation ``app``'s. Only the families whose
        name starts ``<app>-`` (every preview's does) are listed and described, so a sweep
        costs what this installation holds, not what the whole region holds. (The ECS API
        reference: ListTaskDefinitionFamilies' ``familyPrefix`` is a prefix, while
        ListTaskDefinitions' ``familyPrefix`` is a whole family name.)"""
        found = []
        for family in self._paged_families(f"{app}-"):
            for arn in self._active_revisions(family):
                described = self._describe_task_definition(arn)
                if described is None:
                    continue
                definition = _task_definition(*described)
                if _managed_by(definition.tags, app):
                    found.append(definition)
        return found

    # --- services --------------------------------------------------------------------------

    def find_service(self, name: str) -> Service | None:
        """The service called ``name`` (INACTIVE included); None when ECS has no record."""
        services = self._describe_services([name])
        return services[0] if services else None

    def create_service(self, request: Mapping[str, Any]) -> Service:
        """Create a service; ``request`` is the full CreateService kwargs without cluster.
        ECS returns an existing service of the name with identical settings; one with other
        settings is ServiceNameTaken, a target group no rule forwards to yet
        NotOnLoadBalancerYet."""
        try:
            answer = self._client.create_service(cluster=self._cluster, **request)
        except ClientError as exc:
            error = translate(exc, "CreateService")
            kind: type[Conflict] | None = None
            if NOT_IDEMPOTENT in _message(exc):
                kind = ServiceNameTaken
            elif NO_LOAD_BALANCER_YET in _message(exc):
                kind = NotOnLoadBalancerYet
            if kind is not None:
                raise kind(str(error), code=error.code, operation=error.operation) from exc
            raise error from exc
        except BotoCoreError as exc:
            raise translate(exc, "CreateService") from exc
        return _service(answer["service"], tags=answer["service"].get("tags"))

    def update_service(
        self,
        name: str,
        *,
        task_definition_arn: str | None = None,
        desired_count: int | None = None,
        load_balancers: Sequence[Mapping[str, Any]] | None = None,
    ) -> Service:
        """Point the service at another revision and/or change its desired count, and/or
        its load balancer mapping (a changed container port: ECS accepts ``loadBalancers``
        on UpdateService for rolling-update services)."""
        changes: dict[str, Any] = {}
        if task_definition_arn is not None:
            changes["taskDefinition"] = task_definition_arn
        if desired_count is not None:
            changes["desiredCount"] = desired_count
        if load_balancers is not None:
            changes["loadBalancers"] = [dict(lb) for lb in load_balancers]
        answer = self._call(
            "UpdateService",
            self._client.update_service,
            not_found=SERVICE_GONE,
            cluster=self._cluster,
            service=name,
            **changes,
        )
        # UpdateService's answer is the service with its new deployment (but not its tags).
        return _service(answer["service"], tags=answer["service"].get("tags"))

    def delete_service(self, name: str) -> None:
        """Delete the service even if tasks still run (force); gone already is fine."""
        try:
            self._client.delete_service(cluster=self._cluster, service=name, force=True)
        except ClientError as exc:
            if _code(exc) in SERVICE_GONE:
                return
            raise translate(exc, "DeleteService") from exc
        except BotoCoreError as exc:
            raise translate(exc, "DeleteService") from exc

    def list_managed_services(self, app: str) -> list[Service]:
        """ACTIVE and DRAINING services of the cluster tagged as installation ``app``'s."""
        arns = list(self._paged_service_arns())
        found: list[Service] = []
        for start in range(0, len(arns), SERVICES_PER_DESCRIBE):
            found.extend(self._describe_services(arns[start : start + SERVICES_PER_DESCRIBE]))
        return [
            service
            for service in found
            if service.status in LIVE_SERVICE_STATUSES and _managed_by(service.tags, app)
        ]

    # --- calls -------------------------------------------------------------------------------

    def _describe_task_definition(
        self, name: str
    ) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
        try:
            answer = self._client.describe_task_definition(taskDefinition=name, include=["TAGS"])
        except ClientError as exc:
            if _code(exc) == "ClientException" and NO_TASK_DEFINITION in _message(exc):
                return None
            raise translate(exc, "DescribeTaskDefinition") from exc
        except BotoCoreError as exc:
            raise translate(exc, "DescribeTaskDefinition") from exc
        return answer["taskDefinition"], answer.get("tags", [])

    def _active_revisions(self, family: str) -> Iterator[str]:
        for arn in self._paged_task_definitions({"familyPrefix": family}):
            if _family_of(arn) == family:
                yield arn

    def _paged_task_definitions(self, filters: dict[str, str]) -> Iterator[str]:
        kwargs: dict[str, Any] = {**filters, "status": "ACTIVE"}
        while True:
            page = self._call("ListTaskDefinitions", self._client.list_task_definitions, **kwargs)
            yield from page.get("taskDefinitionArns", [])
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def _paged_families(self, prefix: str) -> Iterator[str]:
        # At most 100 families a page (ECS API reference, ListTaskDefinitionFamilies).
        kwargs: dict[str, Any] = {"familyPrefix": prefix, "status": "ACTIVE", "maxResults": 100}
        while True:
            page = self._call(
                "ListTaskDefinitionFamilies", self._client.list_task_definition_families, **kwargs
            )
            yield from page.get("families", [])
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def _paged_service_arns(self) -> Iterator[str]:
        kwargs: dict[str, Any] = {"cluster": self._cluster, "maxResults": 100}
        while True:
            page = self._call("ListServices", self._client.list_services, **kwargs)
            yield from page.get("serviceArns", [])
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def _describe_services(self, names: Sequence[str]) -> list[Service]:
        answer = self._call(
            "DescribeServices",
            self._client.describe_services,
            cluster=self._cluster,
            services=list(names),
            include=["TAGS"],
        )
        return [_service(raw, tags=raw.get("tags")) for raw in answer.get("services", [])]

    _call = staticmethod(call)


def _task_definition(raw: dict[str, Any], tags: Sequence[Mapping[str, str]]) -> TaskDefinition:
    container = (raw.get("containerDefinitions") or [{}])[0]
    return TaskDefinition(
        arn=raw["taskDefinitionArn"],
        family=raw["family"],
        revision=int(raw["revision"]),
        image=str(container.get("image", "")),
        environment={e["name"]: e.get("value", "") for e in container.get("environment", [])},
        tags=_tag_dict(tags),
    )


def _service(raw: dict[str, Any], *, tags: Sequence[Mapping[str, str]] | None) -> Service:
    primary = next((d for d in raw.get("deployments", []) if d.get("status") == "PRIMARY"), None)
    events = sorted(raw.get("events", []), key=lambda e: str(e.get("createdAt", "")), reverse=True)
    deployments = tuple(
        Deployment(
            id=str(d.get("id", "")),
            status=str(d.get("status", "")),
            task_definition_arn=str(d.get("taskDefinition", "")),
            rollout_state=d.get("rolloutState"),
            rollout_reason=d.get("rolloutStateReason"),
        )
        for d in raw.get("deployments", [])
    )
    balancers = raw.get("loadBalancers") or [{}]
    port = balancers[0].get("containerPort")
    return Service(
        name=raw["serviceName"],
        arn=raw["serviceArn"],
        status=raw["status"],
        desired_count=int(raw.get("desiredCount", 0)),
        task_definition_arn=str(raw.get("taskDefinition", "")),
        tags=_tag_dict(tags or []),
        rollout_state=primary.get("rolloutState") if primary else None,
        rollout_reason=primary.get("rolloutStateReason") if primary else None,
        events=tuple(str(e.get("message", "")) for e in events[:MAX_EVENTS]),
        deployments=deployments,
        container_port=int(port) if port is not None else None,
    )


def _tag_dict(tags: Sequence[Mapping[str, str]]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in tags}


def _family_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _revision_of(arn: str) -> int:
    return int(arn.rsplit(":", 1)[-1])


def _managed_by(tags: dict[str, str], app: str) -> bool:
    return tags.get(MANAGED_TAG) == "true" and tags.get(APP_TAG) == app


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))
