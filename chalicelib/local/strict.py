"""The strict-AWS layer: what AWS refuses (or reports) and moto does not, for tests and the
local stack, through botocore's own event hooks on the clients of a ClientFactory.

Each rule names the AWS page it comes from. A refused call is answered at ``before-call``
(nothing reaches moto) with AWS's code, message and HTTP 400 in the service's wire format,
parsed by botocore's own parser, so callers get exactly the ClientError (subclass) botocore
raises for AWS's answer. Route53 throttling answers at ``before-send``, so botocore's retry
mode deals with it as with AWS. The layer's own reads go through separate clients
(``reads``) that carry no hooks: they never recurse into the layer and are never counted by
other hook-based tools (tests/integration/faults.py). State is kept under one lock; the
local stack calls from several threads.

Windows (rule propagation, target group release, service draining) run on ``clock``, which
tests replace with a :class:`ManualClock`; the Route53 rate runs on ``rate_clock`` (real
time), because botocore's retries sleep in real time. Never imported by production code.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.parsers import create_parser

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.agents import stand_in_agent
from chalicelib.local.strict_quota import OLD, Quotas
from chalicelib.local.strict_reads import Reads, TokenBucket, allowed, forwards

PARAMS = "strict_aws_params"  # where a call's own parameters wait for its before-call
READS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})
ANSWER_URL = "https://strict-aws.invalid/"  # where refused and throttled attempts "went"
TIMED_OUT = {"State": "unhealthy", "Reason": "Target.Timeout", "Description": "Request timed out"}
Answer = tuple[AWSResponse, dict[str, Any]]
Refusal = tuple[str, str]


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now, self._lock = start, threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class StrictAws:
    """Documented AWS behaviours that moto does not enforce; see the module docstring."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rules_per_load_balancer: int = 100,
        target_groups_per_load_balancer: int = 100,
        rule_propagation_seconds: float = 15.0,
        target_group_release_seconds: float = 15.0,
        draining_seconds: float = 300.0,
        route53_requests_per_second: float | None = 10.0,
        route53_burst: float = 50.0,
        rate_clock: Callable[[], float] = time.monotonic,
        enforce_security_groups: bool = True,
    ) -> None:
        self._clock, self._enforce_sgs = clock, enforce_security_groups
        # Public: a test or the local stack may lower a quota on a running layer.
        self.quotas = Quotas(rules_per_load_balancer, target_groups_per_load_balancer)
        self._propagation, self._release = rule_propagation_seconds, target_group_release_seconds
        self._draining = draining_seconds
        self._bucket = None
        if route53_requests_per_second is not None:
            self._bucket = TokenBucket(route53_requests_per_second, route53_burst, rate_clock)
        self._lock = threading.Lock()
        self._rules_of: dict[str, dict[str, float]] = {}  # target group → rule → created at
        self._released: dict[str, float] = {}  # target group → its last rule deleted at
        self._deleted: dict[tuple[str, str], tuple[float, str]] = {}  # (cluster, name) → at, ARN
        self._networks: dict[str, tuple[set[str], list[str], list[str]]] = {}  # ECS services
        self._reads = Reads(None)
        self._route53_model: Any = None

    @property
    def rules_per_load_balancer(self) -> int:
        """ELB's rules per load balancer (a test or the local stack may lower it)."""
        return self.quotas.rules_per_load_balancer

    @rules_per_load_balancer.setter
    def rules_per_load_balancer(self, value: int) -> None:
        self.quotas.rules_per_load_balancer = value

    @property
    def target_groups_per_load_balancer(self) -> int:
        """ELB's unique target groups per load balancer (not adjustable on AWS: 100)."""
        return self.quotas.target_groups_per_load_balancer

    @target_groups_per_load_balancer.setter
    def target_groups_per_load_balancer(self, value: int) -> None:
        self.quotas.target_groups_per_load_balancer = value

    def install(self, clients: ClientFactory, *, reads: ClientFactory | None = None) -> StrictAws:
        """Hook the rules onto ``clients``' elbv2, ecs and route53 clients; return self.

        ``reads`` makes the layer's own clients. By default: a new ClientFactory for the
        same region and, if the clients use a custom endpoint (the local stack's moto
        server), that endpoint, credentials from the environment, on one botocore session
        shared by every layer (loading the service models once, not per test). The local
        stack, whose credentials live in its session, passes its own (never ``clients``).
        """
        elbv2, ecs, route53 = (clients.client(s) for s in ("elbv2", "ecs", "route53"))
        if reads is None:
            endpoint = str(elbv2.meta.endpoint_url)
            custom = None if ".amazonaws.com" in endpoint else endpoint
            session = _shared_session()
            agent = stand_in_agent("strict")
            reads = ClientFactory(elbv2.meta.region_name, custom, READS_CONFIG, session, agent)
        self._reads = self.quotas.reads = Reads(reads)
        for client in (elbv2, ecs):
            # Generic events, so that fault injection (registered on the same ones) counts
            # a call before the layer refuses it, and sees its after-call only after the
            # layer noted what took effect.
            client.meta.events.register("before-parameter-build", _keep_params)
            client.meta.events.register_last("before-call", self._before_call)
            client.meta.events.register_first("after-call", self._after_call)
            client.meta.events.register_first("after-call-error", self.quotas.answered)
        ecs.meta.events.register("before-parameter-build.ecs.UpdateService", self._new_deployment)
        route53.meta.events.register("before-parameter-build", _keep_params)
        route53.meta.events.register_last("before-call", self._before_call)
        if self._bucket is not None:
            self._route53_model = route53.meta.service_model.operation_model("GetChange")
            route53.meta.events.register_first("before-send", self._throttle)
        return self

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Answer | None:
        check = {
            "CreateRule": self.quotas.create_rule,
            "ModifyRule": self.quotas.modify_rule,
            "DeleteRule": self._delete_rule,
            "DeleteTargetGroup": self._delete_target_group,
            "CreateService": self._create_service,
            "UpdateService": self._update_service,
            "ChangeResourceRecordSets": self._change_records,
        }.get(model.name)
        refused = check(context.get(PARAMS, {}), context) if check else None
        return _refusal(model, *refused) if refused else None

    def _after_call(
        self, http_response: Any, parsed: Any, model: Any, context: Any, **_: Any
    ) -> None:
        self.quotas.answered(context)
        if http_response.status_code >= 300:
            return
        if model.name in ("CreateRule", "ModifyRule", "DeleteRule"):
            self._rule_changed(parsed, context)
        elif model.name == "DescribeTargetHealth":
            self._target_health(parsed, context.get(PARAMS, {}))
        elif model.service_model.service_name == "ecs":
            self._services(model.name, parsed)

    # --- 1, 2: listener rule quotas and host-header length: chalicelib/local/strict_quota.py

    # --- 8: Route53 creates a record only where none is in the way, and batches are atomic -

    def _change_records(self, params: dict[str, Any], _: dict[str, Any]) -> Refusal | None:
        """A CREATE where the name already has a record set of that type, or where a CNAME
        and another type would share the name, is refused with InvalidChangeBatch and the
        whole batch fails (moto writes duplicates, and applies a batch change by change).
        https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html
        (transactional batches); the messages are Route53's, as the SDKs' issues quote them."""
        zone = str(params.get("HostedZoneId", "")).rsplit("/", 1)[-1]
        for change in params.get("ChangeBatch", {}).get("Changes", []):
            record = change.get("ResourceRecordSet", {})
            name, kind = str(record.get("Name", "")), str(record.get("Type", ""))
            if change.get("Action") != "CREATE":
                continue
            present = self._reads.record_types_at(zone, name)
            fqdn = name if name.endswith(".") else name + "."
            if kind in present:
                return "InvalidChangeBatch", (
                    f"[Tried to create resource record set [name='{fqdn}', type='{kind}'] "
                    "but it already exists]"
                )
            if (kind == "CNAME" and present) or (kind != "CNAME" and "CNAME" in present):
                return "InvalidChangeBatch", (
                    f"[RRSet of type {kind} with DNS name {fqdn} is not permitted as it "
                    "conflicts with other records with the same DNS name in zone]"
                )
        return None

    # --- 3, 4: a rule takes a while to reach ECS, and a while to let go of its group --------

    def _delete_rule(self, params: dict[str, Any], context: dict[str, Any]) -> None:
        context[OLD] = self._reads.ruleforwards(str(params.get("RuleArn")))

    def _rule_changed(self, parsed: dict[str, Any], context: dict[str, Any]) -> None:
        old: set[str] = context.get(OLD, set())
        rules = parsed.get("Rules") or [{"RuleArn": context.get(PARAMS, {}).get("RuleArn")}]
        rule, new = str(rules[0]["RuleArn"]), forwards(rules[0].get("Actions", []))
        now = self._clock()
        with self._lock:
            for group in new - old:
                self._rules_of.setdefault(group, {})[rule] = now
            for group in old - new:
                self._rules_of.get(group, {}).pop(rule, None)
                self._released[group] = now

    def _delete_target_group(self, params: dict[str, Any], _: dict[str, Any]) -> Refusal | None:
        """ResourceInUse while a rule forwards to the group, and for a while after its last
        rule is deleted; the Terraform provider's aws_lb_target_group retries exactly this.
        https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteTargetGroup.html"""
        group = str(params.get("TargetGroupArn", ""))
        users = self._users(group)
        with self._lock:
            released = self._released.get(group)
        if users or (released is not None and self._clock() - released < self._release):
            return (
                "ResourceInUse",
                f"Target group '{group}' is currently in use by a listener or a rule",
            )
        return None

    def _users(self, group: str) -> dict[str, float | None]:
        """The listeners and rules forwarding to ``group``, each with when this layer saw it
        created (None: before its time). The rules the layer saw are checked one by one
        (cheap); a group it saw no rule for is looked for on every listener that may
        forward to it. (A rule made for a seen group through clients without the layer is
        missed: tests make theirs through the layer.)"""
        with self._lock:
            known = dict(self._rules_of[group]) if group in self._rules_of else None
        if known is not None:
            return {arn: known[arn] for arn in self._reads.existing_rules(sorted(known))}
        described = self._reads.target_group(group) or {}
        return {
            arn: None
            for balancer in sorted(described.get("LoadBalancerArns", []))
            for _, arn, forwards in self._reads.forwarders(balancer)
            if group in forwards
        }

    # --- 3, 5: ECS CreateService, and services that stay DRAINING ------------------------------

    def _create_service(self, params: dict[str, Any], _: dict[str, Any]) -> Refusal | None:
        key = (_cluster_name(params.get("cluster")), str(params.get("serviceName")))
        now = self._clock()
        with self._lock:
            deleted = self._deleted.get(key)
        # "If you attempt to create a new service with the same name as an existing service
        # in either ACTIVE or DRAINING status, you receive an error."
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html
        if deleted is not None and now - deleted[0] < self._draining:
            return "InvalidParameterException", "Creation of service was not idempotent."
        # A target group no listener or rule forwards to (or only one still propagating):
        # the Terraform provider's serviceCreateWithRetry retries exactly this message.
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb.html
        wanted = [b.get("targetGroupArn") for b in params.get("loadBalancers") or []]
        for group in filter(None, wanted):
            born = self._users(group).values()
            if not any(at is None or now - at >= self._propagation for at in born):
                return "InvalidParameterException", (
                    f"The target group with targetGroupArn {group} does not have an associated "
                    "load balancer."
                )
        return None

    def _new_deployment(self, params: dict[str, Any], **_: Any) -> None:
        # A new task definition starts a new deployment, with its own id (API_UpdateService);
        # moto keeps the running deployment and its id unless forced.
        wanted, cluster = params.get("taskDefinition"), params.get("cluster")
        if not wanted or params.get("forceNewDeployment"):
            return
        if self._reads.service_task_definition(cluster, str(params.get("service"))) != wanted:
            params["forceNewDeployment"] = True

    def _update_service(self, params: dict[str, Any], _: dict[str, Any]) -> Refusal | None:
        # "You can't update a service that's inactive": API_UpdateService, ServiceNotActive
        key = (_cluster_name(params.get("cluster")), str(params.get("service")))
        with self._lock:
            gone = key in self._deleted
        return ("ServiceNotActiveException", "Service was not ACTIVE.") if gone else None

    def _services(self, operation: str, parsed: dict[str, Any]) -> None:
        """A deleted service stays DRAINING for a while, then INACTIVE; ListServices shows
        neither. https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html"""
        now = self._clock()
        with self._lock:
            if operation in ("CreateService", "UpdateService", "DeleteService"):
                service = parsed["service"]
                key = (_cluster_name(service.get("clusterArn")), service["serviceName"])
                config = service.get("networkConfiguration", {}).get("awsvpcConfiguration")
                groups = {b.get("targetGroupArn") for b in service.get("loadBalancers", [])}
                if operation == "DeleteService":
                    self._deleted.setdefault(key, (now, service["serviceArn"]))
                    self._networks.pop(service["serviceArn"], None)
                else:
                    if operation == "CreateService":
                        self._deleted.pop(key, None)
                    if config:
                        networks = (config.get("securityGroups", []), config.get("subnets", []))
                        self._networks[service["serviceArn"]] = (groups, *networks)
            elif operation == "ListServices":
                gone = {arn for _, arn in self._deleted.values()}
                parsed["serviceArns"] = [a for a in parsed.get("serviceArns", []) if a not in gone]
            elif operation == "DescribeServices":
                for service in parsed.get("services", []):
                    key = (_cluster_name(service.get("clusterArn")), service["serviceName"])
                    if key in self._deleted:
                        draining = now - self._deleted[key][0] < self._draining
                        service["status"] = "DRAINING" if draining else "INACTIVE"

    # --- 6: Route53 throttling -------------------------------------------------------------

    def _throttle(self, request: Any, **_: Any) -> AWSResponse | None:
        """Route53 throttles per account: HTTP 400, Code Throttling, Message Rate exceeded.
        https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/throttling-api-requests.html"""
        assert self._bucket is not None
        if self._bucket.take():
            return None
        # moto's own before-send handler runs after this one: pointed elsewhere, it leaves
        # the request alone, so a throttled attempt changes nothing, as in AWS.
        request.url = ANSWER_URL
        return _refusal(self._route53_model, "Throttling", "Rate exceeded")[0]

    # --- 7: security groups on the path load balancer → task -------------------------------

    def port_reachable(self, target_group_arn: str, port: int) -> bool:
        """Whether the load balancers forwarding to the group can open TCP ``port`` on the
        tasks of the ECS services using it: the tasks' security groups let it in (from a
        balancer's group, or CIDRs covering the balancer's subnets) and the balancer's
        groups let it out (to the tasks' group, or CIDRs covering their subnets). True when
        the rule is off or nothing can be judged (no balancer, or no awsvpc service created
        through the layer's clients).
        https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-update-security-groups.html"""
        if not self._enforce_sgs:
            return True
        reads, balancers = self._reads, {_balancer_of(a) for a in self._users(target_group_arn)}
        with self._lock:
            tasks = [
                (g, s) for groups, g, s in self._networks.values() if target_group_arn in groups
            ]
        if not tasks or not balancers:
            return True
        lb_groups, lb_subnets = reads.balancer_networks(balancers)
        outward = reads.permissions(lb_groups, egress=True)
        for groups, subnets in tasks:
            inward = reads.permissions(groups, egress=False)
            if not allowed(inward, port, lb_groups, reads.cidrs(lb_subnets)):
                return False
            if not allowed(outward, port, set(groups), reads.cidrs(subnets)):
                return False
        return True

    def _target_health(self, parsed: dict[str, Any], params: dict[str, Any]) -> None:
        """A target the load balancer cannot reach times out its health checks: unhealthy,
        Target.Timeout, "Request timed out" (the health check reason codes).
        https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html"""
        arn = str(params.get("TargetGroupArn", ""))
        group = (self._reads.target_group(arn) if self._enforce_sgs else None) or {}
        checked = str(group.get("HealthCheckPort", "traffic-port"))
        verdicts: dict[int, bool] = {}
        for description in parsed.get("TargetHealthDescriptions", []) if group else []:
            if description.get("TargetHealth", {}).get("State") not in ("healthy", "initial"):
                continue
            ports = {int(description["Target"].get("Port") or group.get("Port") or 0)}
            ports |= {int(checked)} if checked.isdigit() else set()
            for port in ports - verdicts.keys():
                verdicts[port] = self.port_reachable(arn, port)
            if not all(verdicts[port] for port in ports):
                description["TargetHealth"] = dict(TIMED_OUT)


def _balancer_of(arn: str) -> str:
    """A listener's or a listener rule's ARN → its load balancer's ARN."""
    if ":listener-rule/" in arn:
        return arn.replace(":listener-rule/", ":loadbalancer/", 1).rsplit("/", 2)[0]
    return arn.replace(":listener/", ":loadbalancer/", 1).rsplit("/", 1)[0]


def _cluster_name(cluster: str | None) -> str:
    return (cluster or "default").rsplit("/", 1)[-1]


@functools.cache
def _shared_session() -> Any:
    return botocore.session.get_session()


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[PARAMS] = dict(params)


def _refusal(model: Any, code: str, message: str) -> Answer:
    """AWS's 400 answer in the service's wire format, parsed by botocore's own parser."""
    protocol, request_id, headers = model.service_model.protocol, str(uuid.uuid4()), HTTPHeaders()
    headers["x-amzn-RequestId"] = request_id
    if protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.1"
        body = json.dumps({"__type": code, "message": message}).encode()
    else:
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code><Message>"
            f"{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
    parsed = create_parser(protocol).parse(
        {"status_code": 400, "headers": headers, "body": body}, model.output_shape
    )
    return AWSResponse(ANSWER_URL, 400, headers, _Body(body)), parsed


class _Body(bytes):
    """The raw body botocore reads from an HTTP response."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield bytes(self)
