"""The generated Chalice package needs one provider (hashicorp/aws) and uses no attribute
the provider deprecates (chalicelib/tools/deploy/one_provider.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.tools.deploy.one_provider import (
    API_STAGE,
    DEPRECATED_DEPLOYMENT_KEYS,
    one_provider_template,
)


def test_the_package_has_no_null_provider_and_no_null_data_source(
    template: dict[str, Any], override: dict[str, Any]
) -> None:
    assert "null_data_source" not in template.get("data", {})
    assert set(template["terraform"]["required_providers"]) == {"aws"}
    assert set(override["terraform"]["required_providers"]) == {"aws"}


def test_the_stage_is_its_own_resource_and_the_endpoint_reads_it(template: dict[str, Any]) -> None:
    deployment = template["resource"]["aws_api_gateway_deployment"]["rest_api"]
    assert not set(DEPRECATED_DEPLOYMENT_KEYS) & set(deployment)
    stage = template["resource"]["aws_api_gateway_stage"]["rest_api"]
    assert stage["stage_name"] == API_STAGE
    assert stage["deployment_id"] == "${aws_api_gateway_deployment.rest_api.id}"
    assert "invoke_url" in template["output"]["EndpointURL"]["value"]
    assert "aws_api_gateway_stage.rest_api" in template["output"]["EndpointURL"]["value"]


def test_rewriting_twice_changes_nothing(template: dict[str, Any]) -> None:
    assert one_provider_template(template) == template
