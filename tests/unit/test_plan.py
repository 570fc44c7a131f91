"""The pure planner: desired state + what AWS holds → the steps, in order. No AWS here."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.aws.ecr import Image
from chalicelib.aws.ecs import Deployment, Service, TaskDefinition
from chalicelib.aws.elbv2 import Rule, TargetGroup
from chalicelib.aws.route53 import AliasRecord
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.names import names_for
from chalicelib.domain.resources import ManagedResource, ResourceKind
from chalicelib.domain.settings import Listener
from chalicelib.engine.converge import (
    SPEC_TAG,
    ClaimPriority,
    CreateRule,
    CreateService,
    CreateTargetGroup,
    DeleteDns,
    DeleteRule,
    DeleteService,
    DeleteTargetGroup,
    DeregisterTaskDefinitions,
    Observed,
    RegisterTaskDefinition,
    ReleasePriority,
    RemoveImageTags,
    SetHealthCheckPath,
    Signal,
    TagBranchImage,
    Target,
    UpdateService,
    UpsertDns,
    plan,
)

NAMES = names_for("shop", "octo/shop", "feature/cart", "preview.example.com")
OURS = NAMES.tags()
LISTENER = Listener("arn:listener", "alb-1.example.com", "Z1")
SHA = "c" * 40
IMAGE = Image(tag=SHA, digest="sha256:1", manifest="{}", media_type="")
TARGET = Target(NAMES, LISTENER, f"repo:{SHA}", {"family": NAMES.task_family}, "spec-1", 1)
DNS = AliasRecord(NAMES.host, "alb-1.example.com", "Z1", NAMES.dns_owner)
GROUP = TargetGroup("arn:tg", NAMES.target_group, OURS)
RULE = Rule("arn:rule", LISTENER.listener_arn, 7, (NAMES.host,), ("arn:tg",), OURS)
TASK = TaskDefinition(
    "arn:td:1", NAMES.task_family, 1, f"repo:{SHA}", {}, {**OURS, SPEC_TAG: "spec-1"}
)
SERVICE = Service(
    NAMES.service(1),
    "arn:svc",
    "ACTIVE",
    1,
    "arn:td:1",
    OURS,
    "IN_PROGRESS",
    None,
    ("service has reached a steady state.",),
)
EVERYTHING = Observed(DNS, GROUP, RULE, IMAGE, IMAGE, TASK, SERVICE)
ENV = Environment(
    slug=NAMES.slug,
    repository="octo/shop",
    branch="feature/cart",
    desired_sha=SHA,
    listener_arn=LISTENER.listener_arn,
    priority=7,
    status=Status.DEPLOYING,
)


def kinds(steps: object) -> list[type]:
    return [type(step) for step in steps]  # type: ignore[attr-defined]


def test_a_new_branch_gets_dns_first_then_rule_then_service() -> None:
    fresh = replace(ENV, listener_arn=None, priority=None, status=Status.PENDING)
    the_plan = plan(fresh, Observed(sha_image=IMAGE), TARGET, None)

    assert kinds(the_plan.steps) == [
        UpsertDns,
        ClaimPriority,
        CreateTargetGroup,
        CreateRule,
        TagBranchImage,
        RegisterTaskDefinition,
        CreateService,
    ]
    assert the_plan.status == Status.DEPLOYING


def test_without_an_image_only_the_routing_is_made_and_it_waits() -> None:
    fresh = replace(ENV, listener_arn=None, priority=None)
    the_plan = plan(fresh, Observed(), replace(TARGET, image_source="ci"), None)

    assert kinds(the_plan.steps) == [UpsertDns, ClaimPriority, CreateTargetGroup, CreateRule]
    assert the_plan.status == Status.BUILDING


def test_everything_in_place_plans_nothing() -> None:
    assert plan(ENV, EVERYTHING, TARGET, None).steps == ()


def test_a_new_spec_registers_a_revision_and_updates_the_service() -> None:
    the_plan = plan(ENV, EVERYTHING, replace(TARGET, spec="spec-2"), None)

    assert kinds(the_plan.steps) == [RegisterTaskDefinition, UpdateService]


def test_deployment_completed_waits_for_a_healthy_target_before_ready() -> None:
    the_plan = plan(ENV, EVERYTHING, TARGET, Signal("deployment_completed"))

    assert [type(s).__name__ for s in the_plan.steps] == ["AwaitHealthyTarget"]
    assert the_plan.status == Status.READY


def test_a_service_still_draining_from_a_deleted_branch_gets_a_new_generation() -> None:
    draining = replace(SERVICE, status="DRAINING")
    recreated = replace(ENV, status=Status.PENDING, generation=1)

    the_plan = plan(recreated, replace(EVERYTHING, service=draining), TARGET, None)

    assert the_plan.steps == (CreateService(2),)


def test_a_resource_with_our_name_but_not_our_tags_stops_the_plan() -> None:
    foreign = replace(GROUP, tags={"team": "payments"})

    the_plan = plan(ENV, replace(EVERYTHING, target_group=foreign), TARGET, None)

    assert the_plan.steps == ()
    assert the_plan.status == Status.FAILED
    assert the_plan.reason is not None and "without branchenv's tags" in the_plan.reason


def test_teardown_goes_in_dependency_order() -> None:
    the_plan = plan(replace(ENV, desired="absent"), EVERYTHING, TARGET, None)

    assert kinds(the_plan.steps) == [
        DeleteDns,
        DeleteRule,
        DeleteService,
        DeleteTargetGroup,
        DeregisterTaskDefinitions,
        RemoveImageTags,
        ReleasePriority,
    ]
    assert the_plan.status == Status.DELETED


def test_a_teardown_untags_in_one_step_and_trusts_a_family_only_from_the_record() -> None:
    building = replace(TARGET, image_source="build")
    absent = replace(ENV, desired="absent", task_definitions=("arn:td:1",))

    observed_in_aws = plan(absent, EVERYTHING, building, None).steps
    from_record = plan(absent, replace(EVERYTHING, recorded=True), building, None).steps

    both_tags = RemoveImageTags((NAMES.branch_tag, NAMES.cache_tag))
    assert both_tags in observed_in_aws and both_tags in from_record
    assert DeregisterTaskDefinitions(NAMES.task_family, known=()) in observed_in_aws
    assert DeregisterTaskDefinitions(NAMES.task_family, known=("arn:td:1",)) in from_record


def test_teardown_skips_what_is_not_ours() -> None:
    strangers = replace(
        EVERYTHING,
        dns=replace(DNS, owner="heritage=external-dns"),
        rule=replace(RULE, tags={}),
        service=replace(SERVICE, tags={"branchenv:managed": "true"}),
    )

    the_plan = plan(replace(ENV, desired="absent"), strangers, TARGET, None)

    assert DeleteDns not in kinds(the_plan.steps)
    assert DeleteRule not in kinds(the_plan.steps)
    assert DeleteService not in kinds(the_plan.steps)


def test_leftovers_of_the_environment_are_removed_once() -> None:
    leftovers = [
        ManagedResource(
            ResourceKind.SERVICE, "arn:aws:ecs:r:1:service/c/" + NAMES.service(3), NAMES.slug
        ),
        ManagedResource(ResourceKind.TARGET_GROUP, "arn:tg", NAMES.slug),
        ManagedResource(ResourceKind.SERVICE, "arn:aws:ecs:r:1:service/c/other_1", "other"),
    ]

    the_plan = plan(replace(ENV, desired="absent"), EVERYTHING, TARGET, None, leftovers)

    deleted = [s.name for s in the_plan.steps if isinstance(s, DeleteService)]
    assert deleted == [NAMES.service(1), NAMES.service(3)]
    assert sum(isinstance(s, DeleteTargetGroup) for s in the_plan.steps) == 1


def test_a_plan_prints_as_a_dry_run() -> None:
    text = plan(replace(ENV, desired="absent"), EVERYTHING, TARGET, None).describe()

    assert text.splitlines()[0].startswith("DeleteDns(")
    assert text.splitlines()[-1] == "→ deleted"


# --- issue 12: what AWS does that moto does not -----------------------------------------


ROLLED_BACK = replace(
    SERVICE,
    task_definition_arn="arn:td:0",
    rollout_state="IN_PROGRESS",
    deployments=(
        Deployment("ecs-svc/2", "PRIMARY", "arn:td:0", "IN_PROGRESS", None),
        Deployment("ecs-svc/1", "ACTIVE", "arn:td:1", "FAILED", "tasks failed to start"),
    ),
)


def test_a_revision_the_circuit_breaker_rolled_back_is_failed_not_redeployed() -> None:
    observed = replace(EVERYTHING, service=ROLLED_BACK)
    env = replace(ENV, deployed_sha="b" * 40)

    the_plan = plan(env, observed, TARGET, None)

    assert UpdateService not in kinds(the_plan.steps)
    assert the_plan.status == Status.FAILED
    assert the_plan.reason is not None
    assert "tasks failed to start" in the_plan.reason and "bbbbbbb" in the_plan.reason


def test_the_failed_signal_wins_over_the_rolled_back_task_definition() -> None:
    # moto lists no deployments; the signal alone must stop the loop of UpdateService.
    observed = replace(EVERYTHING, service=replace(SERVICE, task_definition_arn="arn:td:0"))
    signal = Signal("deployment_failed", reason="ECS deployment circuit breaker: boom")

    the_plan = plan(ENV, observed, TARGET, signal)

    assert the_plan.steps == ()
    assert the_plan.status == Status.FAILED
    assert the_plan.reason is not None and "boom" in the_plan.reason


def test_a_service_moved_back_by_someone_else_is_updated_again() -> None:
    observed = replace(EVERYTHING, service=replace(SERVICE, task_definition_arn="arn:td:0"))

    the_plan = plan(ENV, observed, TARGET, None)

    assert kinds(the_plan.steps) == [UpdateService]


def test_a_changed_health_check_path_is_applied_to_the_existing_target_group() -> None:
    observed = replace(EVERYTHING, target_group=replace(GROUP, health_check_path="/old"))
    target = replace(TARGET, health_check_path="/healthz")

    the_plan = plan(ENV, observed, target, None)

    assert SetHealthCheckPath("arn:tg", "/healthz") in the_plan.steps


def test_a_changed_port_updates_the_service_load_balancer_mapping() -> None:
    observed = replace(EVERYTHING, service=replace(SERVICE, container_port=8080))
    target = replace(TARGET, container_port=3000)

    the_plan = plan(ENV, observed, target, None)

    assert UpdateService(NAMES.service(1), container_port=3000) in the_plan.steps


def test_a_failed_branch_that_never_served_creates_nothing_again() -> None:
    failed = replace(ENV, status=Status.FAILED, reason="no room", listener_arn=None)

    the_plan = plan(failed, Observed(), TARGET, None)

    assert the_plan.steps == ()
    assert (the_plan.status, the_plan.reason) == (Status.FAILED, "no room")


def test_a_late_failure_of_an_earlier_rollout_does_not_fail_the_current_one() -> None:
    # EventBridge delivers at least once and not in order: ECS still lists the deployment
    # the event is about, and it ran another revision.
    earlier = Deployment("ecs-svc/1", "ACTIVE", "arn:td:0", "FAILED", "boom")
    current = Deployment("ecs-svc/2", "PRIMARY", "arn:td:1", "IN_PROGRESS", None)
    observed = replace(EVERYTHING, service=replace(SERVICE, deployments=(current, earlier)))
    signal = Signal("deployment_failed", reason="boom", deployment_id="ecs-svc/1")

    the_plan = plan(ENV, observed, TARGET, signal)

    assert the_plan.status == Status.DEPLOYING


def test_a_failure_signal_for_a_ready_commit_changes_nothing() -> None:
    ready = replace(ENV, status=Status.READY, deployed_sha=SHA)
    signal = Signal("deployment_failed", reason="boom", deployment_id="ecs-svc/9")

    the_plan = plan(ready, EVERYTHING, TARGET, signal)

    assert (the_plan.steps, the_plan.status) == ((), Status.READY)


def test_a_new_health_check_path_goes_with_the_rollout_that_brings_it() -> None:
    observed = replace(EVERYTHING, target_group=replace(GROUP, health_check_path="/old"))
    target = replace(TARGET, spec="spec-2", health_check_path="/healthz")

    the_plan = plan(ENV, observed, target, None)

    assert kinds(the_plan.steps) == [RegisterTaskDefinition, SetHealthCheckPath, UpdateService]


def test_after_a_rollback_the_serving_commits_health_check_path_comes_back() -> None:
    failed = replace(
        ENV, status=Status.FAILED, deployed_sha="b" * 40, serving_health_check_path="/"
    )
    observed = replace(EVERYTHING, target_group=replace(GROUP, health_check_path="/healthz"))
    target = replace(TARGET, health_check_path="/healthz")  # what the failed commit wanted

    the_plan = plan(failed, observed, target, None)

    assert the_plan.steps == (SetHealthCheckPath("arn:tg", "/"),)
    assert the_plan.status == Status.FAILED
