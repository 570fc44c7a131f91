"""ELB's per-load-balancer quotas and host-header limit, for the strict-AWS layer.

AWS counts rules and unique target groups per load balancer, over all its listeners
(default rules excluded), and refuses the call that would go over: TooManyRules,
TooManyUniqueTargetGroupsPerLoadBalancer.
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html
(ELB's words are quoted in terraform-provider-aws PR #3582 for TooManyRules and in
aws-load-balancer-controller issue #3767 for the target groups.)

AWS decides each call against what the load balancer holds at that moment, so two
CreateRule calls sent at once for its last free place cannot both succeed. moto checks
nothing, and the layer's check reads moto before the call goes: from the check of a
CreateRule or ModifyRule until its answer (``after-call``, or ``after-call-error`` when
sending failed), :class:`Quotas` holds that load balancer, so a second call for it is
checked only once the first one's rule is in moto (the local stack runs workers in
threads).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from chalicelib.local.strict_reads import Reads, forwards

HOST_MAX = 128
OLD = "strict_aws_old"  # the target groups a rule forwarded to before the call
HELD = "strict_aws_held"  # the load balancer's lock a checked call holds until its answer
LONGEST_HOLD = 30.0  # a call whose answer never comes holds its load balancer this long
Refusal = tuple[str, str]


class Quotas:
    """The checks of CreateRule and ModifyRule; the limits may be lowered while running."""

    def __init__(self, rules_per_load_balancer: int, target_groups_per_load_balancer: int) -> None:
        self.rules_per_load_balancer = rules_per_load_balancer
        self.target_groups_per_load_balancer = target_groups_per_load_balancer
        self.reads = Reads(None)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()

    def create_rule(self, params: dict[str, Any], context: dict[str, Any]) -> Refusal | None:
        return _long_host(params.get("Conditions", [])) or self._quota(
            params["ListenerArn"], None, forwards(params["Actions"]), context
        )

    def modify_rule(self, params: dict[str, Any], context: dict[str, Any]) -> Refusal | None:
        rule = str(params["RuleArn"])
        context[OLD] = self.reads.ruleforwards(rule)
        refused = _long_host(params.get("Conditions") or [])
        if refused is None and params.get("Actions"):
            return self._quota(listener_of(rule), rule, forwards(params["Actions"]), context)
        return refused

    def answered(self, context: dict[str, Any], **_: Any) -> None:
        """The call's answer came (or sending it failed): its load balancer is free."""
        held = context.pop(HELD, None)
        if held is not None:
            held.release()

    def _quota(
        self, listener: str, rule: str | None, wanted: set[str], context: dict[str, Any]
    ) -> Refusal | None:
        balancer = self.reads.load_balancer_of(listener)
        if balancer is None or ":loadbalancer/app/" not in balancer:
            return None  # not an Application Load Balancer's listener: moto answers
        with self._locks_lock:
            lock = self._locks[balancer]
        if lock.acquire(timeout=LONGEST_HOLD):
            context[HELD] = lock  # released when the answer comes, refused or not
        rules, groups = 0, set[str]()
        for kind, arn, targets in self.reads.forwarders(balancer):
            if arn != rule:
                rules, groups = rules + (kind == "rule"), groups | targets
        if rule is None and rules >= self.rules_per_load_balancer:
            message = f"The maximum number of rules on load balancer {balancer} has been reached"
            return "TooManyRules", message
        most = self.target_groups_per_load_balancer
        if wanted - groups and len(groups | wanted) > most:
            return "TooManyUniqueTargetGroupsPerLoadBalancer", (
                "You have reached the maximum number of unique target groups that you can "
                f"associate with a load balancer of type 'application': [{most}]"
            )
        return None


def _long_host(conditions: list[dict[str, Any]]) -> Refusal | None:
    """Host names are at most 128 characters: ValidationError. (moto 5.2 refuses them too,
    in these words; kept for moto versions and stand-ins that do not.)
    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_HostHeaderConditionConfig.html"""
    for condition in conditions:
        config = condition.get("HostHeaderConfig") or {}
        values = config.get("Values", condition.get("Values", []))
        if condition.get("Field") == "host-header" and any(len(v) > HOST_MAX for v in values):
            return (
                "ValidationError",
                f"The 'host-header' value is too long; the limit is '{HOST_MAX}'",
            )
    return None


def listener_of(rule: str) -> str:
    """arn:…:listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id> → the listener's ARN
    (the ARN formats of the ELB API reference)."""
    return rule.replace(":listener-rule/", ":listener/", 1).rsplit("/", 1)[0]
