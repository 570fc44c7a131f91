"""The strict-AWS layer's own view of what moto holds: reads through clients that carry
none of the layer's hooks, Route53's token bucket, and the pure rules of security groups
and forward actions. Used only by chalicelib/local/strict.py (tests and the local stack);
never by production code, never pointed at a real account.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.clients import ClientFactory

_SESSION_LOCK = threading.Lock()


class TokenBucket:
    """Route53's account-level token bucket: ``burst`` tokens (AWS: 50), refilled at
    ``rate`` a second (AWS: 10); a throttled request takes none."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self._rate, self._capacity, self._clock = rate, max(burst, 1.0), clock
        self._tokens, self._at, self._lock = self._capacity, clock(), threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class Reads:
    """The layer's own reads, on clients that carry none of its hooks."""

    def __init__(self, clients: ClientFactory | None) -> None:
        self._clients = clients

    def _client(self, service: str) -> Any:
        if self._clients is None:
            raise RuntimeError("StrictAws.install(clients) must run before the layer is used")
        with _SESSION_LOCK:  # botocore sessions are not thread-safe, and one may be shared
            return self._clients.client(service)

    def _describe(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """An ELB describe call's items; none when what it names is not there."""
        try:
            return list(getattr(self._client("elbv2"), operation)(**kwargs)[key])
        except ClientError:
            return []

    def service_task_definition(self, cluster: str | None, service: str) -> str | None:
        """The task definition ARN an ECS service runs now; None when there is none."""
        kwargs = {"cluster": cluster} if cluster else {}
        answer = self._client("ecs").describe_services(services=[service], **kwargs)
        services = answer.get("services", [])
        return str(services[0]["taskDefinition"]) if services else None

    def record_types_at(self, zone: str, name: str) -> set[str]:
        """The types of the record sets named ``name`` in the hosted zone."""
        answer = self._client("route53").list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=name, MaxItems="20"
        )
        wanted = name.rstrip(".").lower()
        return {
            str(r["Type"])
            for r in answer.get("ResourceRecordSets", [])
            if str(r["Name"]).rstrip(".").lower() == wanted
        }

    def load_balancer_of(self, listener: str) -> str | None:
        found = self._describe("describe_listeners", "Listeners", ListenerArns=[listener])
        return str(found[0]["LoadBalancerArn"]) if found else None

    def forwarders(self, balancer: str) -> Iterator[tuple[str, str, set[str]]]:
        """("listener" or "rule", ARN, target groups) for each listener's default actions
        and each non-default rule of the load balancer."""
        pages = self._client("elbv2").get_paginator("describe_listeners")
        for listener in (
            x for p in pages.paginate(LoadBalancerArn=balancer) for x in p["Listeners"]
        ):
            yield "listener", listener["ListenerArn"], forwards(listener.get("DefaultActions", []))
            kwargs = {"ListenerArn": listener["ListenerArn"]}
            while True:  # DescribeRules has no botocore paginator
                page = self._client("elbv2").describe_rules(**kwargs)
                for rule in page.get("Rules", []):
                    if not rule.get("IsDefault"):
                        yield "rule", rule["RuleArn"], forwards(rule.get("Actions", []))
                if not page.get("NextMarker"):
                    break
                kwargs["Marker"] = page["NextMarker"]

    def existing_rules(self, rules: list[str]) -> list[str]:
        found = self._describe("describe_rules", "Rules", RuleArns=rules) if rules else []
        if not found and len(rules) > 1:  # RuleNotFound: one or more of them is gone
            return [rule for rule in rules if self.existing_rules([rule])]
        return [rule["RuleArn"] for rule in found]

    def ruleforwards(self, rule: str) -> set[str]:
        found = self._describe("describe_rules", "Rules", RuleArns=[rule])
        return forwards(found[0].get("Actions", [])) if found else set()

    def target_group(self, arn: str) -> dict[str, Any] | None:
        found = self._describe("describe_target_groups", "TargetGroups", TargetGroupArns=[arn])
        return found[0] if found else None

    def balancer_networks(self, balancers: Iterable[str]) -> tuple[set[str], set[str]]:
        answer = self._client("elbv2").describe_load_balancers(LoadBalancerArns=sorted(balancers))
        found = answer["LoadBalancers"]
        groups = {g for b in found for g in b.get("SecurityGroups", [])}
        return groups, {z["SubnetId"] for b in found for z in b.get("AvailabilityZones", [])}

    def permissions(self, groups: Iterable[str], *, egress: bool) -> list[dict[str, Any]]:
        ids, key = sorted(groups), "IpPermissionsEgress" if egress else "IpPermissions"
        ec2 = self._client("ec2")
        found = ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"] if ids else []
        return [permission for group in found for permission in group.get(key, [])]

    def cidrs(self, subnets: Iterable[str]) -> list[str]:
        ids = sorted(subnets)
        found = self._client("ec2").describe_subnets(SubnetIds=ids)["Subnets"] if ids else []
        return [subnet["CidrBlock"] for subnet in found]


def allowed(rules: list[dict[str, Any]], port: int, peers: set[str], cidrs: list[str]) -> bool:
    """Some rule opens TCP ``port`` to a peer group, or CIDRs that cover every subnet of the
    other side (security group rules only allow, and add up)."""
    open_ = [r for r in rules if covers(r, port)]
    if any(pair.get("GroupId") in peers for r in open_ for pair in r.get("UserIdGroupPairs", [])):
        return True
    ranges = [ipaddress.IPv4Network(i["CidrIp"]) for r in open_ for i in r.get("IpRanges", [])]
    subnets = [ipaddress.IPv4Network(cidr) for cidr in cidrs]
    return bool(subnets) and all(any(s.subnet_of(r) for r in ranges) for s in subnets)


def covers(rule: dict[str, Any], port: int) -> bool:
    protocol, ports = str(rule.get("IpProtocol")), (rule.get("FromPort", 0), rule.get("ToPort", 0))
    return protocol == "-1" or (protocol in ("tcp", "6") and ports[0] <= port <= ports[1])


def forwards(actions: Iterable[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for action in (a for a in actions if a.get("Type") == "forward"):
        found |= {action["TargetGroupArn"]} if action.get("TargetGroupArn") else set()
        weighted = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
        found |= {group["TargetGroupArn"] for group in weighted}
    return found
