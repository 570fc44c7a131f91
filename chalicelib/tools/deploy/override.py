"""Step 2 of a deploy: the Terraform override that wires Chalice's package to terraform/.

:func:`write_override` writes ``chalice_override.tf.json`` (:data:`OVERRIDE_FILE`) next to
the generated template, with :func:`chalice_override`'s content: every generated function
gets the installation's environment, role, timeout (short for the two that answer HTTP
requests, the API and the waker) and log group; the SQS event source
points at the real work queue, with a maximum concurrency and partial batch responses; with
``dashboard_auth = "iam"`` every API method but the GitHub webhook requires AWS_IAM
(:mod:`chalicelib.tools.deploy.dashboard_auth`); AWS event rules are narrowed to this
installation; Chalice's old Terraform and provider pins are replaced.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chalicelib.tools.deploy.dashboard_auth import SWAGGER_LOCAL, dashboard_auth_swagger
from chalicelib.tools.deploy.errors import DeployError
from chalicelib.tools.deploy.package import GENERATED_TEMPLATE

OVERRIDE_FILE = "chalice_override.tf.json"
# app.py's placeholder: Chalice needs a queue name when it packages the app.
PLACEHOLDER_QUEUE = "branchenv-work.fifo"
API_HANDLER = "api_handler"
# app.py's ``@app.lambda_function(name="waker")``: a load balancer's Lambda target
# (terraform/waker.tf), answering a person who waits on a sleeping preview's page.
WAKER_HANDLER = "waker"
# Functions that answer an HTTP request while someone waits get the API's short timeout;
# the rest (the worker, event handlers, the reaper) get the worker's.
REQUEST_HANDLERS = frozenset({API_HANDLER, WAKER_HANDLER})

# Chalice's template pins Terraform < 1.4 and the AWS provider < 5; the override replaces
# both, as terraform/versions.tf does (5.27 added logging_config). hashicorp/null is gone:
# package.py removes the template's null_data_source (one_provider.py).
TERRAFORM_PINS: dict[str, Any] = {
    "required_version": ">= 1.5",
    "required_providers": {
        "aws": {"source": "hashicorp/aws", "version": ">= 5.27, < 6.0"},
    },
}

# The worker's event source: at most var.worker_max_concurrency invocations at once (Lambda
# API reference, "ScalingConfig": 2 to 1000), and partial batch responses, so the worker
# reports a failed record itself and sets its own visibility on a wait (Lambda developer
# guide, "Handling errors for an SQS event source in Lambda", ReportBatchItemFailures).
WORKER_EVENT_SOURCE: dict[str, Any] = {
    "event_source_arn": "${var.queue_arn}",
    "function_response_types": ["ReportBatchItemFailures"],
    "scaling_config": {"maximum_concurrency": "${var.worker_max_concurrency}"},
}

# Narrowing of the rules Chalice generates for on_cw_event handlers, by event source:
# the key added to the pattern and its value (a variable of terraform/chalice).
EVENT_FILTERS: dict[str, tuple[str, Any]] = {
    "aws.codebuild": ("detail", {"project-name": ["${var.codebuild_project}"]}),
    "aws.ecr": ("detail", {"repository-name": ["${var.ecr_repository}"]}),
    "aws.ecs": (
        "resources",
        [
            "${var.cluster_arn}",
            {"prefix": "${var.ecs_service_arn_prefix}"},
            {"prefix": "${var.ecs_task_arn_prefix}"},
        ],
    ),
}


def chalice_override(template: Mapping[str, Any]) -> dict[str, Any]:
    """The override file's content for a generated Chalice template (see module doc)."""
    resources = template.get("resource", {})
    override: dict[str, Any] = {
        "terraform": TERRAFORM_PINS,
        "resource": {
            "aws_lambda_function": {
                name: _function_override(name, function)
                for name, function in resources.get("aws_lambda_function", {}).items()
            },
        },
    }
    mappings = _sqs_mappings(resources.get("aws_lambda_event_source_mapping", {}))
    if mappings:
        override["resource"]["aws_lambda_event_source_mapping"] = mappings
    apis = resources.get("aws_api_gateway_rest_api", {})
    if apis:
        override["resource"]["aws_api_gateway_rest_api"] = {
            name: {"name": "${var.app_name}"} for name in apis
        }
    swagger = template.get("locals", {}).get(SWAGGER_LOCAL)
    if swagger is not None:
        override["locals"] = {SWAGGER_LOCAL: dashboard_auth_swagger(swagger)}
    rules = _event_rules(resources.get("aws_cloudwatch_event_rule", {}))
    if rules:
        override["resource"]["aws_cloudwatch_event_rule"] = rules
    return override


def _function_override(name: str, function: Mapping[str, Any]) -> dict[str, Any]:
    timeout = "api_timeout_seconds" if name in REQUEST_HANDLERS else "worker_timeout_seconds"
    handler = "api" if name == API_HANDLER else name.replace("_", "-")
    chalice_tags = json.dumps(function.get("tags", {}))
    return {
        "function_name": f"${{var.app_name}}-{handler}",
        "role": "${var.role_arn}",
        "timeout": f"${{var.{timeout}}}",
        "memory_size": "${var.memory_mb}",
        "environment": {"variables": "${var.environment}"},
        "logging_config": {"log_format": "Text", "log_group": "${var.log_group_name}"},
        "tags": f"${{merge(var.tags, {chalice_tags})}}",
    }


def _sqs_mappings(mappings: Mapping[str, Any]) -> dict[str, Any]:
    result = {}
    for name, mapping in mappings.items():
        source = str(mapping.get("event_source_arn", ""))
        if ":sqs:" not in source:
            continue
        if not source.endswith(":" + PLACEHOLDER_QUEUE):
            raise DeployError(
                f"{name} reads {source.rsplit(':', 1)[-1]}, but the only queue terraform/ "
                f"creates is the work queue: declare SQS handlers with queue={PLACEHOLDER_QUEUE!r}"
            )
        result[name] = copy.deepcopy(WORKER_EVENT_SOURCE)
    return result


def _event_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """Rule names prefixed with the installation (two installations may share an account),
    and AWS event patterns narrowed to this installation's resources."""
    result = {}
    for name, rule in rules.items():
        handler = name.removesuffix("-event").replace("_", "-")
        override: dict[str, Any] = {"name": f"${{var.app_name}}-{handler}"}
        if "event_pattern" in rule:  # a schedule has none
            pattern = json.loads(rule["event_pattern"])
            narrowed = narrow_event_pattern(pattern)
            if narrowed != pattern:
                override["event_pattern"] = json.dumps(narrowed, sort_keys=True)
        result[name] = override
    return result


def narrow_event_pattern(pattern: Mapping[str, Any]) -> dict[str, Any]:
    """``pattern`` restricted to this installation's build project, repository or cluster,
    when it is for exactly one of those AWS sources and does not already filter on it."""
    narrowed = dict(pattern)
    sources = pattern.get("source", [])
    if len(sources) != 1 or sources[0] not in EVENT_FILTERS:
        return narrowed
    key, value = EVENT_FILTERS[sources[0]]
    if key == "detail":
        detail = dict(pattern.get("detail", {}))
        for field_name, allowed in value.items():
            detail.setdefault(field_name, allowed)
        narrowed["detail"] = detail
    else:
        narrowed.setdefault(key, value)
    return narrowed


def write_override(package_dir: Path) -> dict[str, Any]:
    """Write the override file next to the generated template; return its content."""
    template = json.loads((package_dir / GENERATED_TEMPLATE).read_text())
    override = chalice_override(template)
    (package_dir / OVERRIDE_FILE).write_text(json.dumps(override, indent=2, sort_keys=True) + "\n")
    return override
