"""The Lambda's IAM policy grants exactly the AWS actions the code calls.

The calls are discovered from the code, not listed here: every gateway module in
chalicelib/aws/ is parsed, and each attribute taken from its boto3 client (``self._client``,
whatever attribute the constructor stores ``client`` in, or a ``client`` variable) is
mapped to its API operation with botocore's service model (``get_paginator`` and
``get_waiter`` arguments too). A gateway method that calls a new operation fails
test_every_call_has_its_action_in_the_policy until terraform/iam.tf grants it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.terraform.hcl import ROOT, TERRAFORM, load_module, policy_statements

GATEWAYS = ROOT / "chalicelib" / "aws"
# Gateway modules whose name is not the boto3 service name.
SERVICE_OF_MODULE = {
    "secrets": "secretsmanager",
    "markers": "dynamodb",
    "tagging": "resourcegroupstaggingapi",
}
# Services whose IAM prefix is neither their signing name nor their endpoint prefix: the
# Resource Groups Tagging API's endpoint is "tagging", its IAM prefix "tag" (Service
# Authorization Reference, "Actions, resources, and condition keys for Amazon Resource
# Group Tagging API"). CloudWatch's endpoint prefix is "monitoring", its IAM prefix
# "cloudwatch" ("Actions, resources, and condition keys for Amazon CloudWatch").
IAM_PREFIX = {"resourcegroupstaggingapi": "tag", "cloudwatch": "cloudwatch"}
# Client attributes that are not API calls.
NOT_OPERATIONS = {"meta", "exceptions", "can_paginate", "close"}

# Actions the policy needs although no gateway calls them by that name.
INDIRECT_ACTIONS = {
    # Lambda's SQS event source polls the work queue with the function's own role.
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    # The Lambda runtime writes the functions' logs into the installation's log group.
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    # RegisterTaskDefinition names the task execution role and the task role.
    "iam:PassRole",
    # Tags given on CreateService/RegisterTaskDefinition and CreateTargetGroup/CreateRule
    # need the tagging permission too.
    "ecs:TagResource",
    "elasticloadbalancing:AddTags",
}

# Actions AWS does not let a policy scope to a resource: the only ones allowed on "*".
NO_RESOURCE_LEVEL = {
    "ecs:RegisterTaskDefinition",
    "ecs:DeregisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitions",
    "ecs:ListTaskDefinitionFamilies",
    "ecs:ListServices",
    "ecs:TagResource",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "tag:GetResources",
    "cloudwatch:GetMetricData",
}

# Operations IAM authorises through the actions of their parts, with no action of their
# own: "Permissions for Put, Update, Delete, and Get actions are governed by the permissions
# used for the underlying PutItem, UpdateItem, DeleteItem, and GetItem operations"
# (DynamoDB developer guide, "Using IAM with DynamoDB transactions").
AUTHORISED_BY_PARTS = {
    "dynamodb:TransactWriteItems": (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ),
}

_BOTOCORE = botocore.session.get_session()


@dataclass(frozen=True)
class Call:
    """One API operation a gateway module uses."""

    module: str
    action: str  # service:Operation, as IAM spells it


def service_of(module: str) -> str:
    service = SERVICE_OF_MODULE.get(module, module)
    if service not in _BOTOCORE.get_available_services():
        raise AssertionError(
            f"chalicelib/aws/{module}.py calls a boto3 client, but {service!r} is not a boto3 "
            "service: add the module to SERVICE_OF_MODULE in tests/terraform/test_iam.py"
        )
    return service


def client_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Attributes of self and plain names that hold the boto3 client in this module."""
    attributes, names = {"_client"}, {"client"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            if node.value.id != "client":
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute) and _is_self(target.value):
                    attributes.add(target.attr)
    return attributes, names


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def client_attributes(source: str) -> set[str]:
    """Every name taken from the module's boto3 client, plus paginator and waiter names."""
    tree = ast.parse(source)
    attributes, names = client_names(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        is_client = (
            isinstance(owner, ast.Attribute) and _is_self(owner.value) and owner.attr in attributes
        ) or (isinstance(owner, ast.Name) and owner.id in names)
        if is_client:
            found.add(node.attr)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get_paginator", "get_waiter")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(f"{node.func.attr}:{node.args[0].value}")
    return found


def actions_of(module: str, source: str) -> set[Call]:
    """The IAM actions for the API operations ``source`` (chalicelib/aws/<module>.py) uses."""
    used = client_attributes(source) - NOT_OPERATIONS - {"get_paginator", "get_waiter"}
    if not used:
        return set()
    service = service_of(module)
    model = _BOTOCORE.get_service_model(service)
    prefix = IAM_PREFIX.get(service) or model.metadata.get("signingName") or model.endpoint_prefix
    operations = {xform_name(name): name for name in model.operation_names}
    calls = set()
    for name in sorted(used):
        if name.startswith("get_waiter:"):
            waiters = _BOTOCORE.get_waiter_model(service)
            by_name = {xform_name(w): w for w in waiters.waiter_names}
            waiter = by_name.get(name.split(":", 1)[1])
            operation = waiters.get_waiter(waiter).operation if waiter else ""
        else:
            operation = operations.get(name.removeprefix("get_paginator:"), "")
        if not operation:
            raise AssertionError(f"chalicelib/aws/{module}.py uses {name}, not a {service} API")
        action = f"{prefix}:{operation}"
        for part in AUTHORISED_BY_PARTS.get(action, (action,)):
            calls.add(Call(module, part))
    return calls


def code_calls() -> set[Call]:
    calls: set[Call] = set()
    for path in sorted(GATEWAYS.glob("*.py")):
        calls |= actions_of(path.stem, path.read_text())
    return calls


def granted(statements: Iterable[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in statement["actions"]}


def missing_actions(calls: Iterable[Call], policy: set[str]) -> list[str]:
    return sorted(
        f"{c.action} (chalicelib/aws/{c.module}.py)" for c in calls if c.action not in policy
    )


@pytest.fixture(scope="module")
def statements() -> list[dict[str, Any]]:
    return policy_statements(load_module(TERRAFORM), "lambda")


def test_discovery_finds_the_gateway_calls() -> None:
    actions = {call.action for call in code_calls()}
    assert {"sqs:SendMessage", "dynamodb:PutItem", "secretsmanager:GetSecretValue"} <= actions


def test_every_call_has_its_action_in_the_policy(statements: list[dict[str, Any]]) -> None:
    assert missing_actions(code_calls(), granted(statements)) == []


def test_the_policy_grants_nothing_the_code_does_not_call(
    statements: list[dict[str, Any]],
) -> None:
    called = {call.action for call in code_calls()}
    assert sorted(granted(statements) - called - INDIRECT_ACTIONS) == []


def test_every_indirect_action_is_still_granted(statements: list[dict[str, Any]]) -> None:
    assert sorted(INDIRECT_ACTIONS - granted(statements)) == []


def test_a_new_call_without_its_action_is_reported() -> None:
    source = (
        "class Builds:\n"
        "    def __init__(self, client):\n"
        "        self._codebuild = client\n"
        "    def start(self):\n"
        "        self._codebuild.start_build(projectName='x')\n"
        "        self._codebuild.get_paginator('list_builds_for_project')\n"
    )
    calls = actions_of("codebuild", source)
    assert missing_actions(calls, {"codebuild:StartBuild"}) == [
        "codebuild:ListBuildsForProject (chalicelib/aws/codebuild.py)"
    ]


def test_a_waiter_is_mapped_to_the_operation_it_polls() -> None:
    source = "def wait(client):\n    client.get_waiter('services_stable').wait()\n"
    assert actions_of("ecs", source) == {Call("ecs", "ecs:DescribeServices")}


def test_a_gateway_for_an_unknown_service_is_reported() -> None:
    with pytest.raises(AssertionError, match="SERVICE_OF_MODULE"):
        actions_of("builds", "def f(client):\n    client.start_build()\n")


def test_only_actions_without_resource_level_permissions_use_a_wildcard(
    statements: list[dict[str, Any]],
) -> None:
    wildcard = granted(s for s in statements if "*" in s["resources"])
    assert sorted(wildcard - NO_RESOURCE_LEVEL) == []


def _conditions(statement: dict[str, Any]) -> set[str]:
    return {condition["variable"] for condition in statement.get("condition", [])}


def test_what_the_worker_creates_must_be_tagged_as_ours(statements: list[dict[str, Any]]) -> None:
    creates = [
        s
        for s in statements
        if any(
            a.startswith(("ecs:", "elasticloadbalancing:"))
            and a.split(":")[1].startswith(("Create", "Register"))
            for a in s["actions"]
        )
    ]
    assert creates
    for statement in creates:
        assert "aws:RequestTag/branchenv:managed" in _conditions(statement), statement["sid"]


def test_what_the_worker_changes_must_be_tagged_as_ours(statements: list[dict[str, Any]]) -> None:
    changes = [
        s
        for s in statements
        if any(
            a.startswith(("ecs:", "elasticloadbalancing:"))
            and a.split(":")[1].startswith(("Delete", "Update", "Modify"))
            for a in s["actions"]
        )
    ]
    assert changes
    for statement in changes:
        assert "aws:ResourceTag/branchenv:managed" in _conditions(statement), statement["sid"]


def test_dns_changes_stay_under_the_preview_domain(statements: list[dict[str, Any]]) -> None:
    (records,) = [s for s in statements if "route53:ChangeResourceRecordSets" in s["actions"]]
    names = [
        c
        for c in records["condition"]
        if c["variable"] == "route53:ChangeResourceRecordSetsNormalizedRecordNames"
    ]
    assert names == [
        {
            "test": "ForAllValues:StringLike",
            "variable": "route53:ChangeResourceRecordSetsNormalizedRecordNames",
            "values": ["*.${var.preview_domain}"],
        }
    ]


def _statements_granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in s["actions"]]


def test_a_waiting_step_may_change_visibility_on_the_work_queue_only(
    statements: list[dict[str, Any]],
) -> None:
    (statement,) = _statements_granting(statements, "sqs:ChangeMessageVisibility")
    assert statement["resources"] == ["${aws_sqs_queue.work.arn}"]


def test_a_changed_health_check_is_applied_only_to_our_target_groups(
    statements: list[dict[str, Any]],
) -> None:
    (modify,) = _statements_granting(statements, "elasticloadbalancing:ModifyTargetGroup")
    (delete,) = _statements_granting(statements, "elasticloadbalancing:DeleteTargetGroup")
    assert modify["resources"] == delete["resources"]
    assert modify["condition"] == delete["condition"]
    assert "aws:ResourceTag/branchenv:managed" in _conditions(modify)


def test_the_reaper_may_count_the_dead_letters(statements: list[dict[str, Any]]) -> None:
    dead_letters = "${aws_sqs_queue.work_dead_letters.arn}"
    readers = _statements_granting(statements, "sqs:GetQueueAttributes")
    assert any(dead_letters in s["resources"] for s in readers)


# Issue 17 (sleep and wake), granted in terraform/iam.tf for the calls the contract names:
# the reaper's GetMetricData through the gateway chalicelib/aws/cloudwatch.py, and the
# ModifyRule that points a sleeping preview's rule at the waker and back
# (chalicelib/aws/elbv2.py). Until the code makes both calls, this test and
# test_the_policy_grants_nothing_the_code_does_not_call fail, saying which is missing.
SLEEP_AND_WAKE_CALLS = {
    Call("cloudwatch", "cloudwatch:GetMetricData"),
    Call("elbv2", "elasticloadbalancing:ModifyRule"),
}


def test_the_calls_of_sleep_and_wake_are_made_by_the_code() -> None:
    called = {call.action for call in code_calls()}
    assert missing_actions(SLEEP_AND_WAKE_CALLS, called) == []


def test_a_cloudwatch_call_is_mapped_to_its_iam_action() -> None:
    source = (
        "class Metrics:\n"
        "    def __init__(self, client):\n"
        "        self._client = client\n"
        "    def counts(self):\n"
        "        self._client.get_paginator('get_metric_data')\n"
    )
    assert actions_of("cloudwatch", source) == {Call("cloudwatch", "cloudwatch:GetMetricData")}


def test_the_reaper_may_read_request_counts_and_nothing_else_of_cloudwatch(
    statements: list[dict[str, Any]],
) -> None:
    (statement,) = _statements_granting(statements, "cloudwatch:GetMetricData")
    assert statement["actions"] == ["cloudwatch:GetMetricData"]
    assert statement["resources"] == ["*"]  # no resource-level permissions
    assert not [a for a in granted(statements) if a.startswith("cloudwatch:")][1:]


def test_a_rule_is_pointed_at_the_waker_only_when_it_is_ours(
    statements: list[dict[str, Any]],
) -> None:
    (modify,) = _statements_granting(statements, "elasticloadbalancing:ModifyRule")
    (delete,) = _statements_granting(statements, "elasticloadbalancing:DeleteRule")
    assert modify is delete  # the same rules, tagged branchenv:managed=true
    assert "${local.preview_rules}" in modify["resources"]
    assert "aws:ResourceTag/branchenv:managed" in _conditions(modify)
