"""The work queue and the worker's event source: legitimate waits fit in maxReceiveCount,
the worker runs at most worker_max_concurrency converges at once, and it answers with
Lambda's partial batch response."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.tools.deploy import chalice_override
from tests.terraform.hcl import CHALICE_MODULE, TERRAFORM, load_module
from tests.terraform.scratch import Scratch, needs_terraform, refusal
from tests.terraform.test_network import REQUIRED

# The worker's backoff between receives of a waiting message (seconds): 2, 4, 8 ... 60.
BACKOFF = [min(2**n, 60) for n in range(1, 30)]
LONGEST_WAIT_SECONDS = 14 * 60


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    return load_module(TERRAFORM)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Scratch:
    scratch = Scratch(tmp_path_factory.mktemp("queue"))
    scratch.copy(TERRAFORM / "variables.tf")
    return scratch


def test_the_redrive_policy_takes_max_receive_count(root: dict[str, Any]) -> None:
    queue = root["resource"][("aws_sqs_queue", "work")]
    assert "maxReceiveCount = var.max_receive_count" in queue["redrive_policy"]
    assert root["variable"]["max_receive_count"]["default"] == 20


def test_legitimate_waits_fit_before_the_last_receive(root: dict[str, Any]) -> None:
    receives = root["variable"]["max_receive_count"]["default"]
    # The worker stops waiting before the last receive: receives - 1 backoffs at most.
    assert sum(BACKOFF[: receives - 1]) >= LONGEST_WAIT_SECONDS


def test_the_worker_event_source_is_bounded_and_reports_item_failures(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    generated = template["resource"]["aws_lambda_event_source_mapping"]
    wired = override["resource"]["aws_lambda_event_source_mapping"]
    assert set(wired) == set(generated)
    for name, mapping in wired.items():
        assert mapping["function_response_types"] == ["ReportBatchItemFailures"], name
        assert mapping["scaling_config"] == {
            "maximum_concurrency": "${var.worker_max_concurrency}"
        }, name


def test_the_generated_mapping_had_neither_setting(template: dict[str, Any]) -> None:
    """What the override must add: chalice package sets neither."""
    for mapping in template["resource"]["aws_lambda_event_source_mapping"].values():
        assert "scaling_config" not in mapping
        assert "function_response_types" not in mapping


def test_every_mapping_of_the_work_queue_gets_both_settings() -> None:
    source = "arn:${data.aws_partition.chalice.partition}:sqs:eu-west-1:1:branchenv-work.fifo"
    template = {
        "resource": {"aws_lambda_event_source_mapping": {"a": {"event_source_arn": source}}}
    }
    (mapping,) = chalice_override(template)["resource"]["aws_lambda_event_source_mapping"].values()
    assert set(mapping) == {"event_source_arn", "function_response_types", "scaling_config"}


def test_the_root_module_passes_the_maximum_concurrency(root: dict[str, Any]) -> None:
    assert root["module"]["chalice"]["worker_max_concurrency"] == "${var.worker_max_concurrency}"
    assert "worker_max_concurrency" in load_module(CHALICE_MODULE)["variable"]


def test_the_default_concurrency_respects_route53(root: dict[str, Any]) -> None:
    default = root["variable"]["worker_max_concurrency"]["default"]
    assert 2 <= default <= 5  # Lambda's minimum; Route53's 5 requests/s per account


@needs_terraform
@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("worker_max_concurrency", 1, False),
        ("worker_max_concurrency", 2, True),
        ("worker_max_concurrency", 1001, False),
        ("max_receive_count", 4, False),
        ("max_receive_count", 5, True),
        ("max_receive_count", 1000, True),
        ("max_receive_count", 1001, False),
    ],
)
def test_terraform_keeps_both_inside_the_ranges_aws_accepts(
    scratch: Scratch, name: str, value: int, accepted: bool
) -> None:
    refused = refusal(scratch.plan({**REQUIRED, name: value}))
    assert (refused == "") is accepted, refused
    if not accepted:
        assert f"{name} must be a whole number" in refused
