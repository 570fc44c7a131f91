"""The registry of resource kinds: one entry per kind, in teardown order, owning every step.

The planner's teardown and leftover order, the reaper's drift check and the lifecycle
audits all read the registry, so these tests hold it to what they rely on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

from chalicelib.domain.resources import ManagedResource, ResourceKind
from chalicelib.engine.converge import plan
from chalicelib.engine.converge.kinds import REGISTRY, spec_of
from chalicelib.engine.converge.model import AnyStep
from tests.unit.test_plan import ENV, EVERYTHING, NAMES, TARGET


def _owner(step_type: type) -> ResourceKind:
    owners = [spec.kind for spec in REGISTRY if step_type in spec.steps]
    assert len(owners) == 1, f"{step_type.__name__} belongs to {owners}"
    return owners[0]


def test_every_kind_is_registered_once_in_teardown_order() -> None:
    assert [spec.kind for spec in REGISTRY] == list(ResourceKind)
    assert all(spec_of(spec.kind) is spec for spec in REGISTRY)


def test_every_step_type_belongs_to_exactly_one_kind() -> None:
    owned = [step for spec in REGISTRY for step in spec.steps]
    assert sorted(t.__name__ for t in owned) == sorted(t.__name__ for t in get_args(AnyStep))
    for step_type in get_args(AnyStep):
        _owner(step_type)


def test_a_teardown_removes_kinds_in_the_registry_order() -> None:
    the_plan = plan(replace(ENV, desired="absent"), EVERYTHING, TARGET, None)

    order = [list(ResourceKind).index(_owner(type(step))) for step in the_plan.steps]
    assert len(set(order)) == len(ResourceKind)  # every kind is removed
    assert order == sorted(order)


def test_a_leftover_of_each_kind_is_removed_by_one_of_its_own_steps() -> None:
    identifiers = {
        ResourceKind.DNS_RECORD: NAMES.host,
        ResourceKind.LISTENER_RULE: "arn:aws:elasticloadbalancing:r:1:listener-rule/app/a/1/2/3",
        ResourceKind.SERVICE: f"arn:aws:ecs:r:1:service/cluster/{NAMES.service(2)}",
        ResourceKind.TARGET_GROUP: "arn:aws:elasticloadbalancing:r:1:targetgroup/tg/1",
        ResourceKind.TASK_DEFINITION: f"arn:aws:ecs:r:1:task-definition/{NAMES.task_family}:4",
        ResourceKind.IMAGE_TAG: NAMES.branch_tag,
        ResourceKind.PRIORITY_CLAIM: "arn:listener#9",
    }
    leftovers = [ManagedResource(kind, ident, NAMES.slug) for kind, ident in identifiers.items()]
    gone = replace(ENV, desired="absent", listener_arn=None, priority=None)

    steps = plan(gone, type(EVERYTHING)(), TARGET, None, leftovers).steps

    assert [_owner(type(step)) for step in steps] == list(ResourceKind)
    described = "\n".join(step.describe() for step in steps)
    assert f"name={NAMES.service(2)}" in described and f"family={NAMES.task_family}" in described
    assert "priority=9" in described and f"host={NAMES.host}" in described


def test_what_a_record_keeps_compares_equal_to_the_leak_audits_identifier() -> None:
    """The reaper tells drift from what the record names: the record keeps a service's
    name and a revision's ARN, the audit lists a service's ARN and a family."""
    env = replace(
        ENV,
        service_name=NAMES.service(1),
        task_definition_arn=f"arn:aws:ecs:r:1:task-definition/{NAMES.task_family}:3",
        dns_target="alb-1.example.com",
    )
    audit = {
        ResourceKind.SERVICE: f"arn:aws:ecs:r:1:service/cluster/{NAMES.service(1)}",
        ResourceKind.TASK_DEFINITION: NAMES.task_family,
        ResourceKind.DNS_RECORD: NAMES.host.upper() + ".",
    }
    for kind, listed in audit.items():
        spec = spec_of(kind)
        recorded = spec.recorded(env, NAMES.host)
        assert recorded is not None
        assert spec.comparable(recorded) == spec.comparable(listed), kind
    assert spec_of(ResourceKind.IMAGE_TAG).recorded(env, NAMES.host) is None
