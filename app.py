"""branchenv's Chalice app: routes and event handlers only.

Each handler parses its input and calls one function in chalicelib. Dependencies come from
``runtime()``, built lazily on first use, so importing this module stays light (no AWS
client, no PyGithub, no slack-sdk) and tests can swap the runtime with ``use_runtime``.
"""

from __future__ import annotations

import os
from typing import Any

from chalice.app import Chalice, CloudWatchEvent, Response, SQSEvent

from chalicelib.handlers import dashboard
from chalicelib.runtime import Runtime

app = Chalice(app_name="branchenv")

# Chalice needs the queue name when it packages the app; terraform/ points the event
# source at the installation's real queue (chalicelib/tools/deploy/override.py writes the override).
WORK_QUEUE = "branchenv-work.fifo"

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process-wide dependencies, created on first use (warm Lambdas keep them)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_environ(os.environ)
    return _runtime


def use_runtime(replacement: Runtime | None) -> None:
    """Swap the dependencies (tests, the local stack); None goes back to the default."""
    global _runtime
    _runtime = replacement


@app.route(
    "/github/webhook",
    methods=["POST"],
    content_types=[
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/octet-stream",
    ],
)
def github_webhook() -> Response:
    from chalicelib.handlers.intake import receive

    request = app.current_request
    assert request is not None
    deps = runtime()
    raw = request.raw_body or b""
    body = raw.encode("utf-8") if isinstance(raw, str) else raw
    answer = receive(request.headers, body, deps.intake_config(), deps.queue)
    return Response(
        body=answer.body, status_code=answer.status, headers={"Content-Type": "application/json"}
    )


# The QA dashboard. Access (BRANCHENV_DASHBOARD_AUTH) is checked inside
# chalicelib.handlers.dashboard at request time: an authorizer in the decorator would be
# fixed when Chalice packages the app.
@app.route("/", methods=["GET"])
def dashboard_page() -> Response:
    return _dashboard_response(dashboard.page(runtime(), _dashboard_request()))


@app.route("/api/environments", methods=["GET"])
def dashboard_environments() -> Response:
    return _dashboard_response(dashboard.environments(runtime(), _dashboard_request()))


@app.route("/api/environments/{slug}", methods=["GET"])
def dashboard_environment(slug: str) -> Response:
    return _dashboard_response(dashboard.environment(runtime(), _dashboard_request(), slug))


# The dashboard's one request that is not a read: wake a sleeping preview (a converge
# request on the work queue, as a request to its URL sends); the same access rules.
@app.route("/api/environments/{slug}/wake", methods=["POST"])
def dashboard_wake(slug: str) -> Response:
    return _dashboard_response(dashboard.wake(runtime(), _dashboard_request(), slug))


def _dashboard_request() -> dashboard.Request:
    request = app.current_request
    assert request is not None
    return dashboard.Request(
        headers=request.headers, query=request.query_params or {}, context=request.context or {}
    )


def _dashboard_response(answer: dashboard.Answer) -> Response:
    return Response(body=answer.body, status_code=answer.status, headers=dict(answer.headers))


# A sleeping preview's URL: its listener rule forwards to the load balancer's waker target
# group, a Lambda target (ALB → Lambda event in, ALB response out). terraform/ makes the
# target group and lets Elastic Load Balancing invoke this function.
@app.lambda_function(name="waker")
def waker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.handlers.waker import answer

    return answer(event, runtime().waker_deps())


# Events back from AWS: each handler only translates the event into a converge request on
# the work queue (chalicelib.handlers.aws_events); terraform/ routes the same patterns to them.
@app.on_cw_event({"source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"]})
def codebuild_state(event: CloudWatchEvent) -> None:
    _aws_event(event)


@app.on_cw_event({"source": ["aws.ecr"], "detail-type": ["ECR Image Action"]})
def ecr_push(event: CloudWatchEvent) -> None:
    _aws_event(event)


@app.on_cw_event({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]})
def ecs_deployment(event: CloudWatchEvent) -> None:
    _aws_event(event)


@app.on_cw_event({"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]})
def ecs_task_state(event: CloudWatchEvent) -> None:
    _aws_event(event)


def _aws_event(event: CloudWatchEvent) -> None:
    from chalicelib.handlers.aws_events import handle

    deps = runtime()
    handle(event.to_dict(), deps.settings, deps.store, deps.queue)


# The reaper: every 15 minutes by default (terraform/ sets the installation's schedule).
@app.schedule("rate(15 minutes)")
def reaper(event: CloudWatchEvent) -> dict[str, Any]:
    return runtime().reaper.run().to_json()


# Lambda's partial batch response (the event source mapping has ReportBatchItemFailures):
# a message listed here is retried after the backoff the worker set on it.
@app.on_sqs_message(queue=WORK_QUEUE, batch_size=1)
def worker(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    from chalicelib.handlers.worker import Delivery, handle_delivery

    deps = runtime()
    failures = []
    for record in event:
        delivery = Delivery.from_record(record.to_dict())
        if not handle_delivery(delivery, deps):
            failures.append({"itemIdentifier": delivery.message_id})
    return {"batchItemFailures": failures}
