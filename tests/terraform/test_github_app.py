"""Terraform offers a GitHub App as the alternative to the token: its ids reach the Lambda
as plain variables, its private key only as a Secrets Manager ARN the Lambda may read."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.settings import GITHUB_APP_VARIABLES
from tests.terraform.hcl import TERRAFORM, load_module


@pytest.fixture(scope="module")
def root() -> dict[str, Any]:
    return load_module(TERRAFORM)


def test_the_lambda_gets_every_app_setting_but_the_plain_key(root: dict[str, Any]) -> None:
    environment = root["locals"]["lambda_environment"]
    app_id, installation_id, key_arn, key = GITHUB_APP_VARIABLES
    assert environment[app_id] == "${var.github_app_id}"
    assert environment[installation_id] == "${var.github_app_installation_id}"
    assert 'credentials["github_app_private_key"].arn' in environment[key_arn]
    assert key not in environment


def test_the_token_is_withheld_when_an_app_is_configured(root: dict[str, Any]) -> None:
    token_arn = root["locals"]["lambda_environment"]["BRANCHENV_GITHUB_TOKEN_ARN"]
    assert token_arn.startswith('${local.github_app ? "" :')


def test_the_app_key_is_one_of_the_credentials_the_lambda_may_read(root: dict[str, Any]) -> None:
    assert "github_app_private_key" in root["locals"]["secrets"]
    [statement] = [
        s
        for s in root["data"][("aws_iam_policy_document", "lambda")]["statement"]
        if s.get("sid") == "ReadCredentials"
    ]
    assert "aws_secretsmanager_secret.credentials" in str(statement["resources"])
