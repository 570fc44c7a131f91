"""Whatever port a repository may ask for reaches its tasks: the security groups open the
whole container_port_range on the path ALB → task, the Lambda gets the same range as
BRANCHENV_CONTAINER_PORTS (settings refuse a branchenv.yml port outside it), and Terraform
refuses a range that is no range or a default port outside it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.terraform.hcl import TERRAFORM, load_module
from tests.terraform.scratch import Scratch, needs_terraform, refusal

RANGE_FROM = "${var.container_port_range.from}"
RANGE_TO = "${var.container_port_range.to}"
PATH_RULES = [
    ("aws_vpc_security_group_egress_rule", "alb_to_tasks"),
    ("aws_vpc_security_group_ingress_rule", "tasks_from_alb"),
]
# What the root module needs besides defaults, for a scratch plan of its variables.
REQUIRED = {
    "app_name": "demo",
    "vpc_id": "vpc-1",
    "public_subnet_ids": ["subnet-1", "subnet-2"],
    "private_subnet_ids": ["subnet-3"],
    "hosted_zone_id": "Z1",
    "preview_domain": "preview.example.com",
}


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    return load_module(TERRAFORM)


def test_both_ends_of_the_path_open_the_whole_range(root: dict[str, Any]) -> None:
    for address in PATH_RULES:
        rule = root["resource"][address]
        assert (rule["from_port"], rule["to_port"]) == (RANGE_FROM, RANGE_TO), address
        assert rule["ip_protocol"] == "tcp", address


def test_the_path_is_open_to_the_load_balancer_only(root: dict[str, Any]) -> None:
    egress = root["resource"][PATH_RULES[0]]
    ingress = root["resource"][PATH_RULES[1]]
    assert egress["referenced_security_group_id"] == "${aws_security_group.tasks.id}"
    assert ingress["referenced_security_group_id"] == "${aws_security_group.alb.id}"
    assert "cidr_ipv4" not in egress and "cidr_ipv4" not in ingress


def test_the_lambda_enforces_the_range_terraform_opens(root: dict[str, Any]) -> None:
    environment = root["locals"]["lambda_environment"]
    assert environment["BRANCHENV_CONTAINER_PORTS"] == f"{RANGE_FROM}-{RANGE_TO}"


def test_the_default_range_admits_the_ports_web_apps_use(root: dict[str, Any]) -> None:
    variables = root["variable"]
    default = variables["container_port_range"]["default"]
    for port in (80, 3000, 5000, 8000, 8080, variables["container_port"]["default"]):
        assert default["from"] <= port <= default["to"], port


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, root: dict[str, Any]) -> Scratch:
    """The root module's variables and, on a terraform_data, the precondition network.tf
    puts on the tasks' ingress rule."""
    scratch = Scratch(tmp_path_factory.mktemp("network"))
    scratch.copy(TERRAFORM / "variables.tf")
    rule = root["resource"][PATH_RULES[1]]
    (precondition,) = rule["lifecycle"][0]["precondition"]
    condition = precondition["condition"].removeprefix("${").removesuffix("}")
    scratch.write(
        "check.tf",
        'resource "terraform_data" "port_inside_range" {\n'
        "  lifecycle {\n"
        "    precondition {\n"
        f"      condition     = {condition}\n"
        f'      error_message = "{precondition["error_message"]}"\n'
        "    }\n"
        "  }\n"
        "}\n",
    )
    return scratch


@needs_terraform
def test_terraform_accepts_the_defaults_and_a_port_inside_the_range(scratch: Scratch) -> None:
    assert refusal(scratch.plan(REQUIRED)) == ""
    narrow = {
        **REQUIRED,
        "container_port": 3000,
        "container_port_range": {"from": 3000, "to": 3999},
    }
    assert refusal(scratch.plan(narrow)) == ""


@needs_terraform
def test_terraform_refuses_a_default_port_outside_the_range(scratch: Scratch) -> None:
    outside = {
        **REQUIRED,
        "container_port": 8080,
        "container_port_range": {"from": 3000, "to": 3999},
    }
    assert "container_port (the default port) must lie inside" in refusal(scratch.plan(outside))


@needs_terraform
@pytest.mark.parametrize(
    "port_range",
    [{"from": 5000, "to": 4000}, {"from": 0, "to": 100}, {"from": 80, "to": 65536}],
    ids=["reversed", "port-0", "above-65535"],
)
def test_terraform_refuses_a_range_that_is_not_one(
    scratch: Scratch, port_range: dict[str, int]
) -> None:
    refused = refusal(scratch.plan({**REQUIRED, "container_port_range": port_range}))
    assert "container_port_range must be whole ports" in refused
