"""terraform/ gives each load balancer of the pool its waker (issue 17): a Lambda target
group served by app.py's ``waker`` function, which ELB may invoke from that target group
only, named in the load balancer's entry of BRANCHENV_LISTENERS; the waker runs with the
role whose policy covers every AWS call it makes."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Listener, Settings
from chalicelib.handlers.waker import answer
from chalicelib.runtime import Runtime
from chalicelib.tools.deploy import REQUEST_HANDLERS, WAKER_HANDLER
from tests.terraform.hcl import CHALICE_MODULE, TERRAFORM, load_module, policy_statements
from tests.terraform.scratch import Scratch, needs_terraform
from tests.terraform.test_lambda_environment import SAMPLE
from tests.terraform.test_network import REQUIRED

TARGET_GROUP = ("aws_lb_target_group", "waker")
PERMISSION = ("aws_lambda_permission", "waker")
ATTACHMENT = ("aws_lb_target_group_attachment", "waker")
WAKER_ARN = "${module.chalice.waker_function_arn}"
# The IAM action of each operation the waker's clients send (service model name → prefix).
IAM_PREFIX = {"dynamodb": "dynamodb", "sqs": "sqs"}
# The resource each of those services' statements must name: this installation's own.
RESOURCE_OF = {
    "dynamodb": "${aws_dynamodb_table.environments.arn}",
    "sqs": "${aws_sqs_queue.work.arn}",
}


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    return load_module(TERRAFORM)


def test_each_load_balancer_has_a_lambda_target_group(root: dict[str, Any]) -> None:
    group = root["resource"][TARGET_GROUP]
    assert group["count"] == root["resource"][("aws_lb", "previews")]["count"]
    assert group["target_type"] == "lambda"
    assert group["name"] == "${local.waker_target_group_names[count.index]}"
    # The waker reads `headers`; multi-value headers would send multiValueHeaders instead.
    assert group["lambda_multi_value_headers_enabled"] is False
    assert group["health_check"] == [{"enabled": False}]  # a check would invoke the waker
    # Base tags only: never branchenv:managed, so the worker cannot change or delete it.
    assert group["tags"] == "${local.tags}"
    assert not {"port", "protocol", "vpc_id"} & set(group)  # refused for a Lambda target


def test_elb_may_invoke_the_waker_from_each_target_group_only(root: dict[str, Any]) -> None:
    permission = root["resource"][PERMISSION]
    assert permission["count"] == "${var.load_balancer_count}"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["principal"] == "elasticloadbalancing.amazonaws.com"
    assert permission["function_name"] == WAKER_ARN
    assert permission["source_arn"] == "${aws_lb_target_group.waker[count.index].arn}"
    # One statement per target group: their ids must differ.
    assert "count.index" in permission["statement_id"]


def test_the_waker_is_registered_once_elb_may_invoke_it(root: dict[str, Any]) -> None:
    attachment = root["resource"][ATTACHMENT]
    assert attachment["count"] == "${var.load_balancer_count}"
    assert attachment["target_group_arn"] == "${aws_lb_target_group.waker[count.index].arn}"
    assert attachment["target_id"] == WAKER_ARN
    assert attachment["depends_on"] == ["${aws_lambda_permission.waker}"]


def test_each_listener_names_its_load_balancers_waker(root: dict[str, Any]) -> None:
    listeners = root["locals"]["listeners"]
    assert "waker_target_group_arn = aws_lb_target_group.waker[i].arn" in listeners
    # Terraform's entries have exactly the fields the settings read into a Listener.
    keys = set(re.findall(r"(\w+) = ", listeners))
    assert keys == {f.name for f in fields(Listener)}


def test_the_settings_read_the_waker_of_terraforms_listener_entries() -> None:
    entry = {
        "listener_arn": SAMPLE.listener_arn,
        "dns_name": SAMPLE.alb_dns_name,
        "zone_id": SAMPLE.alb_zone_id,
        "waker_target_group_arn": (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/demo-waker/1"
        ),
    }
    environ = {**SAMPLE.environment(), "BRANCHENV_LISTENERS": json.dumps([entry])}
    (listener,) = Settings.from_environ(environ).listeners
    assert listener.waker_target_group_arn == entry["waker_target_group_arn"]


def test_the_package_module_names_the_waker_function(template: dict[str, Any]) -> None:
    output = load_module(CHALICE_MODULE)["output"]["waker_function_arn"]
    assert output["value"] == f"${{aws_lambda_function.{WAKER_HANDLER}.arn}}"
    # app.py's @app.lambda_function(name="waker"): the generated function it refers to.
    assert WAKER_HANDLER in template["resource"]["aws_lambda_function"]


def test_the_waker_answers_within_the_short_timeout(override: dict[str, Any]) -> None:
    assert WAKER_HANDLER in REQUEST_HANDLERS
    waker = override["resource"]["aws_lambda_function"][WAKER_HANDLER]
    assert waker["timeout"] == "${var.api_timeout_seconds}"
    assert waker["role"] == "${var.role_arn}"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, root: dict[str, Any]) -> Scratch:
    """The root module's variables and the waker target groups' names as an output."""
    scratch = Scratch(tmp_path_factory.mktemp("waker"))
    scratch.copy(TERRAFORM / "variables.tf")
    names = root["locals"]["waker_target_group_names"].removeprefix("${").removesuffix("}")
    scratch.write("names.tf", f'output "names" {{\n  value = {names}\n}}\n')
    return scratch


@needs_terraform
def test_every_waker_target_group_name_fits_elbs_32_characters(scratch: Scratch) -> None:
    longest_app = "a" + "b" * 21 + "c"  # 23 characters: the most app_name accepts
    names = scratch.outputs({**REQUIRED, "app_name": longest_app, "load_balancer_count": 5})[
        "names"
    ]
    assert names[:2] == [f"{longest_app}-waker", f"{longest_app}-waker-2"]
    assert len(set(names)) == 5  # the most load_balancer_count accepts
    assert max(len(name) for name in names) <= 32
    assert not [name for name in names if name.startswith("be-")]  # preview groups' prefix


def _sleeping() -> Environment:
    return Environment(
        slug="feature-a",
        repository="example-org/shop",
        branch="feature-a",
        status=Status.SLEEPING,
        asleep=True,
    )


def _event(host: str) -> dict[str, Any]:
    return {
        "httpMethod": "GET",
        "path": "/",
        "headers": {"host": host, "user-agent": "Mozilla/5.0"},
        "queryStringParameters": {},
        "body": "",
        "isBase64Encoded": False,
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}},
    }


def test_the_lambda_role_allows_every_call_the_waker_makes(
    settings: Settings, clients: Any
) -> None:
    runtime = Runtime(settings, clients)
    env = runtime.store.put(_sleeping())
    sent: set[tuple[str, str]] = set()

    def record(model: Any, **_: Any) -> None:
        sent.add((model.service_model.service_name, model.name))

    for service in IAM_PREFIX:
        clients.client(service).meta.events.register("before-call", record)

    woken = answer(_event(f"{env.slug}.{settings.preview_domain}"), runtime.waker_deps())
    unknown = answer(_event(f"nobody.{settings.preview_domain}"), runtime.waker_deps())

    assert (woken["statusCode"], unknown["statusCode"]) == (503, 404)
    assert sent == {("dynamodb", "GetItem"), ("sqs", "SendMessage")}
    statements = policy_statements(load_module(TERRAFORM), "lambda")
    for service, operation in sorted(sent):
        action = f"{IAM_PREFIX[service]}:{operation}"
        granting = [s for s in statements if action in s["actions"]]
        assert [RESOURCE_OF[service] in s["resources"] for s in granting] == [True], action
