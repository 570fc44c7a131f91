"""Elastic Load Balancing v2 (the only caller): preview target groups and host-header rules.

One target group (ip targets) and one listener rule (``host-header = <slug>.<domain>``)
per environment, on a shared listener. Tags come in and go out as ``dict[str, str]``.
This module must never delete a rule or target group it was not asked to by ARN, and
never touch the listener's default action: the base infrastructure owns it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import Conflict, call, translate

MANAGED_TAG = "branchenv:managed"
APP_TAG = "branchenv:app"
TAGS_PER_CALL = 20
RULES_PAGE_SIZE = 400
DEREGISTRATION_DELAY_SECONDS = 10


# ELB's quotas (docs: "Quotas for your Application Load Balancers"): 100 rules per load
# balancer by default (adjustable), 100 target groups per load balancer (not adjustable).
# CreateRule answers TooManyRules, or TooManyUniqueTargetGroupsPerLoadBalancer, when one is
# reached (TooManyTargetGroups is the account's quota, which no other load balancer lifts).
LOAD_BALANCER_FULL = ("TooManyRules", "TooManyUniqueTargetGroupsPerLoadBalancer")


class PriorityInUse(Conflict):
    """Another rule on the listener already has this priority; claim another."""


class LoadBalancerFull(Conflict):
    """The listener's load balancer holds as many rules or target groups as ELB allows."""


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    tags: dict[str, str]
    health_check_path: str | None = None


@dataclass(frozen=True)
class Rule:
    arn: str
    listener_arn: str
    priority: int
    hosts: tuple[str, ...]
    target_group_arns: tuple[str, ...]
    tags: dict[str, str]
    # The target group that gets the rule's traffic: the only one, or the weighted one of
    # highest weight (a weight-0 group gets none). None: the rule does not forward.
    serves: str | None = None


class LoadBalancing:
    """Target groups and listener rules of preview environments."""

    def __init__(self, client: Any, *, rules_page_size: int = RULES_PAGE_SIZE) -> None:
        self._client = client
        self._rules_page_size = rules_page_size

    # --- target groups -----------------------------------------------------------------

    def find_target_group(self, name: str) -> TargetGroup | None:
        """The target group called ``name`` with its tags; None when there is none."""
        try:
            answer = self._client.describe_target_groups(Names=[name])
        except ClientError as exc:
            if _code(exc) == "TargetGroupNotFound":
                return None
            raise translate(exc, "DescribeTargetGroups") from exc
        except BotoCoreError as exc:
            raise translate(exc, "DescribeTargetGroups") from exc
        groups = answer.get("TargetGroups", [])
        if not groups:
            return None
        group = groups[0]
        arn = group["TargetGroupArn"]
        return TargetGroup(
            arn,
            group["TargetGroupName"],
            self._tags([arn]).get(arn, {}),
            health_check_path=group.get("HealthCheckPath"),
        )

    def create_target_group(
        self, name: str, *, vpc_id: str, port: int, health_check_path: str, tags: dict[str, str]
    ) -> TargetGroup:
        """Create (or, with identical settings, get back) an ip target group that drains fast."""
        # ELB returns the existing group for an identical repeat and DuplicateTargetGroupName
        # when the settings differ; moto raises it for any repeat. Either way: Conflict.
        answer = self._call(
            "CreateTargetGroup",
            self._client.create_target_group,
            conflict=("DuplicateTargetGroupName",),
            Name=name,
            Protocol="HTTP",
            ProtocolVersion="HTTP1",
            Port=port,
            VpcId=vpc_id,
            TargetType="ip",
            HealthCheckEnabled=True,
            HealthCheckProtocol="HTTP",
            HealthCheckPath=health_check_path,
            HealthCheckIntervalSeconds=10,
            HealthCheckTimeoutSeconds=5,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=3,
            Matcher={"HttpCode": "200-399"},
            Tags=_key_value(tags),
        )
        arn = answer["TargetGroups"][0]["TargetGroupArn"]
        self._call(
            "ModifyTargetGroupAttributes",
            self._client.modify_target_group_attributes,
            TargetGroupArn=arn,
            Attributes=[
                {
                    "Key": "deregistration_delay.timeout_seconds",
                    "Value": str(DEREGISTRATION_DELAY_SECONDS),
                }
            ],
        )
        return TargetGroup(arn, name, dict(tags), health_check_path=health_check_path)

    def set_health_check_path(self, arn: str, path: str) -> None:
        """Health-check the group's targets at ``path`` from now on."""
        self._call(
            "ModifyTargetGroup",
            self._client.modify_target_group,
            TargetGroupArn=arn,
            HealthCheckPath=path,
        )

    def delete_target_group(self, arn: str) -> None:
        """Delete the target group; gone already is fine; still used by a rule → Conflict."""
        try:
            self._client.delete_target_group(TargetGroupArn=arn)
        except ClientError as exc:
            if _code(exc) == "TargetGroupNotFound":
                return
            raise translate(exc, "DeleteTargetGroup", conflict=("ResourceInUse",)) from exc
        except BotoCoreError as exc:
            raise translate(exc, "DeleteTargetGroup") from exc

    def healthy_targets(self, target_group_arn: str) -> int:
        """How many registered targets the load balancer currently sees as healthy."""
        answer = self._call(
            "DescribeTargetHealth",
            self._client.describe_target_health,
            TargetGroupArn=target_group_arn,
            not_found=("TargetGroupNotFound",),
        )
        return sum(
            1
            for description in answer.get("TargetHealthDescriptions", [])
            if description.get("TargetHealth", {}).get("State") == "healthy"
        )

    def list_managed_target_groups(self, app: str) -> list[TargetGroup]:
        """Every target group tagged ``branchenv:managed=true`` and ``branchenv:app=app``."""
        groups = list(self._all_target_groups())
        tags = self._tags([g["TargetGroupArn"] for g in groups])
        found = (
            TargetGroup(
                g["TargetGroupArn"], g["TargetGroupName"], tags.get(g["TargetGroupArn"], {})
            )
            for g in groups
        )
        return [group for group in found if _managed_by(group.tags, app)]

    # --- listener rules ------------------------------------------------------------------

    def find_rule(self, listener_arn: str, host: str) -> Rule | None:
        """The rule on ``listener_arn`` whose host-header condition is ``host``; or None."""
        wanted = host.lower()
        for raw in self._all_rules(listener_arn):
            if wanted in (h.lower() for h in _hosts(raw)):
                tags = self._tags([raw["RuleArn"]]).get(raw["RuleArn"], {})
                return _rule(listener_arn, raw, tags)
        return None

    def create_rule(
        self,
        listener_arn: str,
        *,
        priority: int,
        host: str,
        target_group_arn: str,
        tags: dict[str, str],
    ) -> Rule:
        """Forward ``host`` to the target group; PriorityInUse when the priority is taken."""
        try:
            answer = self._client.create_rule(
                ListenerArn=listener_arn,
                Priority=priority,
                Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}],
                Actions=[{"Type": "forward", "TargetGroupArn": target_group_arn}],
                Tags=_key_value(tags),
            )
        except ClientError as exc:
            error = translate(exc, "CreateRule", not_found=("ListenerNotFound",))
            if error.code == "PriorityInUse":
                raise PriorityInUse(str(error), code=error.code, operation=error.operation) from exc
            if error.code in LOAD_BALANCER_FULL:
                raise LoadBalancerFull(
                    str(error), code=error.code, operation=error.operation
                ) from exc
            raise error from exc
        except BotoCoreError as exc:
            raise translate(exc, "CreateRule") from exc
        return _rule(listener_arn, answer["Rules"][0], dict(tags))

    def delete_rule(self, arn: str) -> None:
        """Delete the rule; gone already is fine."""
        try:
            self._client.delete_rule(RuleArn=arn)
        except ClientError as exc:
            if _code(exc) == "RuleNotFound":
                return
            raise translate(exc, "DeleteRule") from exc
        except BotoCoreError as exc:
            raise translate(exc, "DeleteRule") from exc

    def forward(self, rule_arn: str, weights: Sequence[tuple[str, int]]) -> None:
        """Make the rule forward to ``weights`` (target group ARN, weight): one group is a
        plain forward, several a weighted ForwardConfig. RuleNotFound is NotFound."""
        if len(weights) == 1:
            action: dict[str, Any] = {"Type": "forward", "TargetGroupArn": weights[0][0]}
        else:
            groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights]
            action = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
        self._call(
            "ModifyRule",
            self._client.modify_rule,
            not_found=("RuleNotFound", "TargetGroupNotFound"),
            RuleArn=rule_arn,
            Actions=[action],
        )

    def used_priorities(self, listener_arn: str) -> set[int]:
        """Priorities of every rule on the listener (the default rule has none)."""
        return {
            int(raw["Priority"])
            for raw in self._all_rules(listener_arn)
            if str(raw.get("Priority", "default")).isdigit()
        }

    def list_managed_rules(self, listener_arn: str, app: str) -> list[Rule]:
        """Every rule on the listener tagged as installation ``app``'s."""
        raws = [r for r in self._all_rules(listener_arn) if not r.get("IsDefault")]
        tags = self._tags([r["RuleArn"] for r in raws])
        rules = (_rule(listener_arn, r, tags.get(r["RuleArn"], {})) for r in raws)
        return [rule for rule in rules if _managed_by(rule.tags, app)]

    def rules_without_tags(self, listener_arn: str) -> list[Rule]:
        """Every rule on the listener but the default, with its hosts and priority and no
        tags (one DescribeRules page holds a listener's 100 rules): the reaper tells whose
        a rule is by its host and the store's claim, and asks :meth:`tags_of` only about
        the rules it cannot place."""
        raws = [r for r in self._all_rules(listener_arn) if not r.get("IsDefault")]
        return [_rule(listener_arn, r, {}) for r in raws]

    def tags_of(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        """The tags of these rules or target groups, 20 to a DescribeTags call."""
        return self._tags(list(arns))

    # --- paging and tags -----------------------------------------------------------------

    def _all_rules(self, listener_arn: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ListenerArn": listener_arn, "PageSize": self._rules_page_size}
        while True:
            page = self._call(
                "DescribeRules",
                self._client.describe_rules,
                not_found=("ListenerNotFound",),
                **kwargs,
            )
            yield from page.get("Rules", [])
            if not page.get("NextMarker"):
                return
            kwargs["Marker"] = page["NextMarker"]

    def _all_target_groups(self) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"PageSize": 400}
        while True:
            page = self._call("DescribeTargetGroups", self._client.describe_target_groups, **kwargs)
            yield from page.get("TargetGroups", [])
            if not page.get("NextMarker"):
                return
            kwargs["Marker"] = page["NextMarker"]

    def _tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        """Tags per ARN, at most 20 ARNs per DescribeTags call (the API's limit)."""
        tags: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), TAGS_PER_CALL):
            answer = self._call(
                "DescribeTags",
                self._client.describe_tags,
                ResourceArns=list(arns[start : start + TAGS_PER_CALL]),
            )
            for description in answer.get("TagDescriptions", []):
                tags[description["ResourceArn"]] = {
                    t["Key"]: t.get("Value", "") for t in description.get("Tags", [])
                }
        return tags

    _call = staticmethod(call)


def _rule(listener_arn: str, raw: dict[str, Any], tags: dict[str, str]) -> Rule:
    priority = str(raw.get("Priority", "0"))
    return Rule(
        arn=raw["RuleArn"],
        listener_arn=listener_arn,
        priority=int(priority) if priority.isdigit() else 0,
        hosts=_hosts(raw),
        target_group_arns=_forward_targets(raw),
        tags=tags,
        serves=_served(raw),
    )


def _hosts(raw: dict[str, Any]) -> tuple[str, ...]:
    hosts: list[str] = []
    for condition in raw.get("Conditions", []):
        if condition.get("Field") != "host-header":
            continue
        config = condition.get("HostHeaderConfig", {}).get("Values")
        hosts.extend(config if config is not None else condition.get("Values", []))
    return tuple(hosts)


def _forward_targets(raw: dict[str, Any]) -> tuple[str, ...]:
    arns: list[str] = []
    for action in raw.get("Actions", []):
        if action.get("Type") != "forward":
            continue
        groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
        candidates = [action.get("TargetGroupArn")] + [g.get("TargetGroupArn") for g in groups]
        arns.extend(arn for arn in candidates if arn and arn not in arns)
    return tuple(arns)


def _served(raw: dict[str, Any]) -> str | None:
    for action in raw.get("Actions", []):
        if action.get("Type") != "forward":
            continue
        groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
        weighted = [(int(g.get("Weight", 1)), g.get("TargetGroupArn")) for g in groups]
        best = max(weighted, key=lambda item: item[0], default=(0, None))
        if action.get("TargetGroupArn") and (not groups or best[0] == 0):
            return str(action["TargetGroupArn"])
        return str(best[1]) if best[0] > 0 and best[1] else None
    return None


def _managed_by(tags: dict[str, str], app: str) -> bool:
    return tags.get(MANAGED_TAG) == "true" and tags.get(APP_TAG) == app


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _key_value(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]
