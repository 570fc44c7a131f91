"""POST /github/webhook through the real Chalice route and a moto SQS FIFO queue.

Every refused request is checked for its status code and for leaving the queue empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.settings import Settings
from chalicelib.handlers.webhooks import sign
from chalicelib.runtime import Runtime
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import WEBHOOK_SECRET, load_event, settings_for

PUSH = "github/push.webhooks-js.branch-update.payload"


@pytest.fixture
def runtime(infra: BaseInfrastructure, clients: ClientFactory) -> Iterator[Runtime]:
    deps = Runtime(
        settings_for(
            infra,
            allowed_repositories="baxterthehacker/public-repo,Codertocat/Hello-World",
            max_body_bytes="16384",
        ),
        clients,
    )
    chalice_app.use_runtime(deps)
    yield deps
    chalice_app.use_runtime(None)


@pytest.fixture
def http(runtime: Runtime) -> Iterator[Any]:
    with Client(chalice_app.app) as client:
        yield client.http


def deliver(
    http: Any,
    event: str,
    body: bytes,
    *,
    secret: str | None = WEBHOOK_SECRET,
    delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    return http.post("/github/webhook", headers=headers, body=body)


def queued(runtime: Runtime) -> list[dict[str, Any]]:
    sqs = runtime.clients.client("sqs")
    answer = sqs.receive_message(
        QueueUrl=runtime.settings.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )
    return answer.get("Messages", [])


def body_of(name: str, **changes: Any) -> bytes:
    payload = load_event(name)
    payload.update(changes)
    return json.dumps(payload).encode()


def test_a_signed_push_is_accepted_and_queued_for_its_branch(http: Any, runtime: Runtime) -> None:
    response = deliver(http, "push", body_of(PUSH))

    assert response.status_code == 202
    answer = json.loads(response.body)
    assert answer["environment"] == "changes"
    assert answer["url"] == "https://changes.preview.example.com"
    [message] = queued(runtime)
    assert json.loads(message["Body"])["branch"] == "changes"
    # The message group is the slug: one group per environment.
    assert message["Attributes"]["MessageGroupId"] == "changes"
    assert message["Attributes"]["MessageDeduplicationId"] == (
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    )


def test_a_redelivery_with_the_same_delivery_id_is_queued_once(http: Any, runtime: Runtime) -> None:
    assert deliver(http, "push", body_of(PUSH)).status_code == 202
    assert deliver(http, "push", body_of(PUSH)).status_code == 202

    assert len(queued(runtime)) == 1


def test_ping_answers_200(http: Any, runtime: Runtime) -> None:
    response = deliver(http, "ping", body_of("github/ping.with-organization.payload"))

    assert response.status_code == 200
    assert json.loads(response.body)["ok"] is True
    assert queued(runtime) == []


@pytest.mark.parametrize(
    ("event", "body", "secret", "status"),
    [
        ("push", body_of(PUSH), None, 401),
        ("push", body_of(PUSH), "not-the-secret", 401),
        ("push", b"{not json", WEBHOOK_SECRET, 400),
        ("push", b"[]", WEBHOOK_SECRET, 400),
        ("push", json.dumps({"ref": "refs/heads/x"}).encode(), WEBHOOK_SECRET, 400),
        ("push", body_of(PUSH, repository={"full_name": "mallory/evil"}), WEBHOOK_SECRET, 403),
        ("push", body_of(PUSH, padding="x" * 20000), WEBHOOK_SECRET, 413),
        ("create", body_of("github/create.payload"), WEBHOOK_SECRET, 200),
        ("push", body_of("github/push.payload"), WEBHOOK_SECRET, 200),
        ("push", body_of("github/push.with-new-branch.payload"), WEBHOOK_SECRET, 200),
        ("issues", body_of(PUSH), WEBHOOK_SECRET, 200),
    ],
    ids=[
        "no-signature",
        "wrong-signature",
        "not-json",
        "not-an-object",
        "not-a-push",
        "unknown-repository",
        "too-large",
        "tag-create",
        "tag-push",
        "default-branch",
        "other-event",
    ],
)
def test_refused_and_ignored_requests_change_nothing(
    http: Any, runtime: Runtime, event: str, body: bytes, secret: str | None, status: int
) -> None:
    response = deliver(http, event, body, secret=secret)

    assert response.status_code == status
    answer = json.loads(response.body)
    assert ("error" in answer) if status >= 400 else (answer["ignored"] is True)
    assert "Traceback" not in response.body.decode()
    assert queued(runtime) == []
    assert list(runtime.store.scan()) == []


def test_a_missing_delivery_header_is_a_bad_request(http: Any, runtime: Runtime) -> None:
    body = body_of(PUSH)
    response = http.post(
        "/github/webhook",
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": sign(body, WEBHOOK_SECRET),
        },
    )

    assert response.status_code == 400
    assert queued(runtime) == []


def test_secrets_from_secrets_manager_accept_both_during_a_rotation(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    arn = clients.client("secretsmanager").create_secret(
        Name="demo/webhook", SecretString=json.dumps(["new-secret", WEBHOOK_SECRET])
    )["ARN"]
    environ = {
        **infra.environment(),
        "BRANCHENV_WEBHOOK_SECRET_ARN": arn,
        "BRANCHENV_IMAGE_SOURCE": "ci",
    }
    deps = Runtime(Settings.from_environ(environ), clients)
    chalice_app.use_runtime(deps)
    try:
        with Client(chalice_app.app) as client:
            old = deliver(client.http, "push", body_of(PUSH), delivery="d-old")
            new = deliver(client.http, "push", body_of(PUSH), secret="new-secret", delivery="d-new")
            wrong = deliver(client.http, "push", body_of(PUSH), secret="x", delivery="d-x")
    finally:
        chalice_app.use_runtime(None)

    assert (old.status_code, new.status_code, wrong.status_code) == (202, 202, 401)
    assert len(queued(deps)) == 2
