"""The strict-AWS layer (chalicelib/local/strict.py), rules 1-4 (ELB's quotas, host
names of at most 128 characters, CreateService before its rule propagated, DeleteTargetGroup
right after its rule): for each rule, moto alone lets the call through (so a defect would
pass unseen), and the layer answers as AWS does. (The host-header length is the exception:
moto 5.2 refuses it itself; the layer answers the same, before moto.) Fixtures and
builders: conftest.py and support.py beside this file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.strict import ManualClock
from chalicelib.tools.infra import BaseInfrastructure
from tests.integration.faults import FaultInjector
from tests.integration.strict.support import (
    Strict,
    balancer_of,
    fresh,
    refused,
    rule,
    service,
    target_group,
)

# --- the clock ---------------------------------------------------------------------------


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=10.0)
    clock.advance(2.5)
    assert clock.now() == 12.5


# --- rule 1: rules and target groups per load balancer -----------------------------------


def test_moto_alone_lets_a_load_balancer_take_more_rules_than_its_quota(
    plain: ClientFactory, base: BaseInfrastructure, listener: str
) -> None:
    group = target_group(plain, base)
    for priority in (1, 2, 3):
        rule(plain, listener, priority, group, host=f"h{priority}.example.com")


def test_rules_are_counted_per_load_balancer_across_its_listeners(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict(rules_per_load_balancer=2)
    elbv2, balancer = aws.client("elbv2"), balancer_of(aws, base, listener)
    not_found = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
    second = elbv2.create_listener(
        LoadBalancerArn=balancer, Protocol="HTTP", Port=8081, DefaultActions=[not_found]
    )["Listeners"][0]["ListenerArn"]
    group = target_group(aws, base)
    rule(aws, listener, 1, group, host="one.example.com")
    rule(aws, second, 1, group, host="two.example.com")

    with pytest.raises(elbv2.exceptions.TooManyRulesException) as exc:
        rule(aws, listener, 2, group, host="three.example.com")

    message = f"The maximum number of rules on load balancer {balancer} has been reached"
    assert refused(exc) == ("TooManyRules", message, 400)
    assert len(elbv2.describe_rules(ListenerArn=listener)["Rules"]) == 2  # with the default


def test_two_rules_sent_at_once_for_the_last_place_are_not_both_created(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    """AWS decides each CreateRule against what the load balancer holds when it runs, so
    of two sent at once for its last free place one is refused (the local stack's workers
    run in threads: a check that reads moto before the call must not let both through)."""
    aws = strict(rules_per_load_balancer=1)
    elbv2, group = aws.client("elbv2"), target_group(aws, base)
    first_paused, second_checking = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def hold_the_first_after_its_check(**_: object) -> None:
        if threading.current_thread().name == "first":
            first_paused.set()
            assert second_checking.wait(5)
            time.sleep(0.2)  # long enough for the second's check, were it not held

    def note_the_second(**_: object) -> None:
        if threading.current_thread().name == "second":
            second_checking.set()

    elbv2.meta.events.register(
        "request-created.elastic-load-balancing-v2.CreateRule", hold_the_first_after_its_check
    )
    elbv2.meta.events.register("before-call.elastic-load-balancing-v2.CreateRule", note_the_second)

    def create(name: str, priority: int) -> None:
        try:
            rule(aws, listener, priority, group, host=f"{name}.example.com")
            outcomes[name] = "created"
        except ClientError as exc:
            outcomes[name] = exc.response["Error"]["Code"]

    first = threading.Thread(target=create, args=("first", 1), name="first")
    second = threading.Thread(target=create, args=("second", 2), name="second")
    first.start()
    assert first_paused.wait(5)
    second.start()
    first.join(10)
    second.join(10)

    assert outcomes == {"first": "created", "second": "TooManyRules"}
    assert len(elbv2.describe_rules(ListenerArn=listener)["Rules"]) == 2  # with the default


def test_a_new_target_group_over_the_load_balancer_quota_is_refused(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict(target_groups_per_load_balancer=2)
    first, second, third = (target_group(aws, base) for _ in range(3))
    rule(aws, listener, 1, first, host="one.example.com")
    rule(aws, listener, 2, second, host="two.example.com")
    rule(aws, listener, 3, first, host="again.example.com")  # not a new group: fine

    with pytest.raises(ClientError) as exc:
        rule(aws, listener, 4, third, host="three.example.com")

    code, message, status = refused(exc)
    assert (code, status) == ("TooManyUniqueTargetGroupsPerLoadBalancer", 400)
    assert message.endswith("a load balancer of type 'application': [2]")
    rule_arn = rule(aws, listener, 5, first, host="five.example.com")["Rules"][0]["RuleArn"]
    forward = [{"Type": "forward", "TargetGroupArn": third}]
    with pytest.raises(ClientError) as exc:
        aws.client("elbv2").modify_rule(RuleArn=rule_arn, Actions=forward)
    assert refused(exc)[0] == "TooManyUniqueTargetGroupsPerLoadBalancer"


# --- rule 2: host names of at most 128 characters -------------------------------------------


def long_host(length: int) -> str:
    return "a" * (length - len(".example.com")) + ".example.com"


TOO_LONG = ("ValidationError", "The 'host-header' value is too long; the limit is '128'", 400)


def test_moto_already_refuses_a_host_header_over_128_characters(
    plain: ClientFactory, base: BaseInfrastructure, listener: str
) -> None:
    """moto 5.2 enforces this one itself; the layer answers the same, before moto."""
    with pytest.raises(ClientError) as exc:
        rule(plain, listener, 1, target_group(plain, base), host=long_host(129))
    assert refused(exc) == TOO_LONG


def test_the_layer_refuses_a_host_header_over_128_characters_before_moto_sees_it(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict()
    group = target_group(aws, base)
    created = rule(aws, listener, 1, group, host=long_host(128))["Rules"][0]
    faults = FaultInjector(aws.clients, services=("elbv2",))

    with pytest.raises(ClientError) as exc:
        rule(aws, listener, 2, group, host=long_host(129))
    assert refused(exc) == TOO_LONG
    too_long = [{"Field": "host-header", "Values": ["x" * 125 + ".com"]}]
    with pytest.raises(ClientError) as exc:
        aws.client("elbv2").modify_rule(RuleArn=created["RuleArn"], Conditions=too_long)
    assert refused(exc) == TOO_LONG
    assert faults.calls == ["CreateRule", "ModifyRule"] and faults.attempts == 0


# --- rule 3: CreateService waits for its target group's rule --------------------------------


def test_moto_alone_creates_a_service_whose_target_group_has_no_load_balancer(
    plain: ClientFactory, base: BaseInfrastructure
) -> None:
    service(plain, base, fresh("web"), target_group(plain, base))


def test_create_service_is_refused_until_its_rule_has_propagated(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws, name = strict(rule_propagation_seconds=15), fresh("web")
    group = target_group(aws, base)
    expected = (
        "InvalidParameterException",
        f"The target group with targetGroupArn {group} does not have an associated load balancer.",
        400,
    )
    with pytest.raises(aws.client("ecs").exceptions.InvalidParameterException) as exc:
        service(aws, base, name, group)
    assert refused(exc) == expected

    rule(aws, listener, 1, group)
    aws.clock.advance(14)
    with pytest.raises(ClientError) as exc:
        service(aws, base, name, group)
    assert refused(exc) == expected

    aws.clock.advance(1)
    assert service(aws, base, name, group)["status"] == "ACTIVE"


# --- rule 4: DeleteTargetGroup right after DeleteRule ----------------------------------------


def test_moto_alone_deletes_a_target_group_right_after_its_rule(
    plain: ClientFactory, base: BaseInfrastructure, listener: str
) -> None:
    group = target_group(plain, base)
    created = rule(plain, listener, 1, group)["Rules"][0]
    plain.client("elbv2").delete_rule(RuleArn=created["RuleArn"])
    plain.client("elbv2").delete_target_group(TargetGroupArn=group)


def test_a_target_group_stays_in_use_for_a_while_after_its_rule_is_deleted(
    strict: Callable[..., Strict], base: BaseInfrastructure, listener: str
) -> None:
    aws = strict(target_group_release_seconds=15)
    elbv2 = aws.client("elbv2")
    group = target_group(aws, base)
    created = rule(aws, listener, 1, group)["Rules"][0]
    expected = (
        "ResourceInUse",
        f"Target group '{group}' is currently in use by a listener or a rule",
        400,
    )
    with pytest.raises(elbv2.exceptions.ResourceInUseException) as exc:
        elbv2.delete_target_group(TargetGroupArn=group)
    assert refused(exc) == expected

    elbv2.delete_rule(RuleArn=created["RuleArn"])
    aws.clock.advance(14)
    with pytest.raises(ClientError) as exc:
        elbv2.delete_target_group(TargetGroupArn=group)
    assert refused(exc) == expected

    aws.clock.advance(1)
    elbv2.delete_target_group(TargetGroupArn=group)
