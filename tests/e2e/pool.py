"""What a pool of load balancers holds, read from moto itself through the local stack's own
(unhooked) clients: which load balancer holds each preview host's listener rule, and where
each Route53 alias points. Shared by tests/e2e/test_full_load_balancer.py and
bench/full_load_balancer.py, so both judge "each alias at its own load balancer" the same way.
"""

from __future__ import annotations

from typing import Any

from chalicelib.local.stack import LocalStack


def bare(name: str) -> str:
    """A DNS name as compared: lower case, no trailing dot, no ``dualstack.`` prefix
    (Route53 answers an ELB alias target with it when it was written so)."""
    return name.lower().rstrip(".").removeprefix("dualstack.")


def balancer_names(stack: LocalStack) -> list[str]:
    """The DNS names of the pool's load balancers, as ELB describes them, in pool order."""
    assert stack.clients is not None
    elbv2 = stack.clients.client("elbv2")
    names = []
    for listener in stack.runtime.settings.listeners:
        names.append(_balancer_dns_name(elbv2, listener.listener_arn))
    return names


def rule_balancers(stack: LocalStack) -> dict[str, str]:
    """host → DNS name of the load balancer whose listener holds the rule for that host
    (DescribeRules on every listener of the pool, DescribeListeners, DescribeLoadBalancers)."""
    assert stack.clients is not None
    elbv2 = stack.clients.client("elbv2")
    found: dict[str, str] = {}
    for listener in stack.runtime.settings.listeners:
        dns_name = _balancer_dns_name(elbv2, listener.listener_arn)
        for rule in _rules(elbv2, listener.listener_arn):
            for host in _hosts(rule):
                found[bare(host)] = dns_name
    return found


def alias_targets(stack: LocalStack) -> dict[str, str]:
    """host → the DNS name its Route53 A alias points at, for every alias in the zone."""
    assert stack.clients is not None
    route53 = stack.clients.client("route53")
    found: dict[str, str] = {}
    kwargs: dict[str, Any] = {"HostedZoneId": stack.runtime.settings.hosted_zone_id}
    while True:
        page = route53.list_resource_record_sets(**kwargs)
        for record in page["ResourceRecordSets"]:
            if record["Type"] == "A" and "AliasTarget" in record:
                found[bare(record["Name"])] = bare(record["AliasTarget"]["DNSName"])
        if not page.get("IsTruncated"):
            return found
        kwargs.update(
            StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"]
        )


def _balancer_dns_name(elbv2: Any, listener_arn: str) -> str:
    listener = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    answer = elbv2.describe_load_balancers(LoadBalancerArns=[listener["LoadBalancerArn"]])
    return bare(answer["LoadBalancers"][0]["DNSName"])


def _rules(elbv2: Any, listener_arn: str) -> list[dict[str, Any]]:
    """The listener's non-default rules, every page (DescribeRules has no paginator)."""
    rules: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ListenerArn": listener_arn, "PageSize": 400}
    while True:
        page = elbv2.describe_rules(**kwargs)
        rules += [rule for rule in page["Rules"] if not rule.get("IsDefault")]
        if not page.get("NextMarker"):
            return rules
        kwargs["Marker"] = page["NextMarker"]


def _hosts(rule: dict[str, Any]) -> list[str]:
    hosts: list[str] = []
    for condition in rule.get("Conditions", []):
        if condition.get("Field") == "host-header":
            config = condition.get("HostHeaderConfig", {})
            hosts += config.get("Values") or condition.get("Values", [])
    return hosts
