"""The Lambda environment terraform/lambda.tf sets matches what chalicelib/domain/settings.py
reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from chalicelib.domain.settings import PREFIX, REQUIRED_VARIABLES, Settings
from chalicelib.tools.infra import BaseInfrastructure
from tests.terraform.hcl import TERRAFORM, load_module

SAMPLE = BaseInfrastructure(
    app_name="demo",
    region="eu-west-1",
    vpc_id="vpc-1",
    private_subnet_ids=("subnet-1", "subnet-2"),
    task_security_group_id="sg-1",
    cluster_name="demo",
    listener_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2",
    alb_dns_name="demo-previews-1.eu-west-1.elb.amazonaws.com",
    alb_zone_id="Z32O12XQLNTSW2",
    hosted_zone_id="Z1",
    preview_domain="preview.example.com",
    ecr_repository_name="demo",
    ecr_repository_url="123456789012.dkr.ecr.eu-west-1.amazonaws.com/demo",
    queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/demo-work.fifo",
    dead_letter_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/demo-work-dlq.fifo",
    table_name="demo-environments",
    codebuild_project_name="demo-build",
    execution_role_arn="arn:aws:iam::123456789012:role/demo-task-execution",
    task_role_arn="arn:aws:iam::123456789012:role/demo-task",
    event_bus_name="demo",
)


class RecordingEnviron(Mapping[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.fixture(scope="module")
def lambda_environment() -> dict[str, str]:
    environment: dict[str, str] = load_module(TERRAFORM)["locals"]["lambda_environment"]
    return environment


def variables_settings_reads() -> set[str]:
    environ = RecordingEnviron(SAMPLE.environment())
    Settings.from_environ(environ)
    return environ.read


def test_recording_sees_what_settings_reads() -> None:
    read = variables_settings_reads()
    assert set(REQUIRED_VARIABLES) <= read
    assert "BRANCHENV_WEBHOOK_SECRET_ARN" in read


def test_lambda_sets_every_required_variable(lambda_environment: dict[str, str]) -> None:
    assert set(REQUIRED_VARIABLES) - set(lambda_environment) == set()


def test_lambda_sets_everything_the_base_infrastructure_provides(
    lambda_environment: dict[str, str],
) -> None:
    provided = set(SAMPLE.environment()) - {"AWS_REGION"}  # Lambda sets AWS_REGION itself
    assert provided - set(lambda_environment) == set()


def test_lambda_sets_only_variables_settings_reads(lambda_environment: dict[str, str]) -> None:
    ours = {name for name in lambda_environment if name.startswith(PREFIX)}
    assert ours - variables_settings_reads() == set()


def test_lambda_leaves_aws_region_to_lambda(lambda_environment: dict[str, str]) -> None:
    assert "AWS_REGION" not in lambda_environment  # reserved: Lambda refuses to set it


def test_secrets_reach_the_lambda_by_arn_only(lambda_environment: dict[str, str]) -> None:
    for secret in ("WEBHOOK_SECRET", "GITHUB_TOKEN", "SLACK_TOKEN", "DASHBOARD_API_KEY"):
        assert PREFIX + secret + "_ARN" in lambda_environment
        assert PREFIX + secret not in lambda_environment
