"""Fuzzing POST /github/webhook through the real Chalice route, a moto SQS queue behind
it: whatever arrives, the answer is never a 5xx and never a traceback, and nothing is
queued unless the body carries a valid signature."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as chalice_app
from chalicelib.aws.clients import ClientFactory
from chalicelib.handlers.webhooks import sign
from chalicelib.runtime import Runtime
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import WEBHOOK_SECRET, load_event, settings_for

PUSH = load_event("github/push.webhooks-js.branch-update.payload")
EVENTS = ["push", "create", "delete", "ping", "issues", "", "PUSH", "push\x00"]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def runtime(infra: BaseInfrastructure, clients: ClientFactory) -> Iterator[Runtime]:
    deps = Runtime(settings_for(infra, allowed_repositories="baxterthehacker/public-repo"), clients)
    chalice_app.use_runtime(deps)
    yield deps
    chalice_app.use_runtime(None)


@pytest.fixture
def http(runtime: Runtime) -> Iterator[Any]:
    with Client(chalice_app.app) as client:
        yield client.http


def queued(runtime: Runtime) -> int:
    attributes = runtime.clients.client("sqs").get_queue_attributes(
        QueueUrl=runtime.settings.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def assert_handled(response: Any) -> None:
    text = response.body.decode("utf-8", "replace")
    assert response.status_code < 500, (response.status_code, text)
    assert "Traceback" not in text and 'File "' not in text, text
    assert WEBHOOK_SECRET not in text


@st.composite
def mutated_push(draw: st.DrawFn) -> bytes:
    """A real push payload with some fields replaced by anything JSON can hold."""
    payload = json.loads(json.dumps(PUSH))
    for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=4)):
        payload[key] = draw(JSON_VALUES)
    if draw(st.booleans()):
        payload["ref"] = draw(st.text(max_size=300))
    return json.dumps(payload).encode()


BODIES = (
    st.binary(max_size=2048) | mutated_push() | JSON_VALUES.map(lambda v: json.dumps(v).encode())
)
SIGNATURES = (
    st.none()
    | HEADER_TEXT
    | st.binary(min_size=32, max_size=32).map(lambda b: "sha256=" + b.hex())
    | BODIES.map(lambda other: sign(other + b" ", WEBHOOK_SECRET))
    | BODIES.map(lambda other: sign(other, "not-the-secret"))
)


@FUZZ
@given(
    body=BODIES,
    event=st.sampled_from(EVENTS) | HEADER_TEXT,
    signature=SIGNATURES,
    extra=st.dictionaries(HEADER_TEXT.filter(lambda k: k.strip() != ""), HEADER_TEXT, max_size=3),
)
def test_unsigned_or_badly_signed_requests_never_fail_and_never_enqueue(
    http: Any,
    runtime: Runtime,
    body: bytes,
    event: str,
    signature: str | None,
    extra: dict[str, str],
) -> None:
    headers = {**extra, "Content-Type": "application/json", "X-GitHub-Event": event}
    headers["X-GitHub-Delivery"] = "fuzz-delivery"
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature

    response = http.post("/github/webhook", headers=headers, body=body)

    assert_handled(response)
    assert response.status_code >= 400
    assert queued(runtime) == 0


@FUZZ
@given(
    body=BODIES | st.just(json.dumps(PUSH).encode()),
    event=st.sampled_from(EVENTS),
    delivery=HEADER_TEXT,
)
def test_signed_requests_never_fail_and_enqueue_only_when_accepted(
    http: Any, runtime: Runtime, body: bytes, event: str, delivery: str
) -> None:
    before = queued(runtime)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body, WEBHOOK_SECRET),
    }

    response = http.post("/github/webhook", headers=headers, body=body)

    assert_handled(response)
    if response.status_code == 202:  # one message, or none for a delivery id seen before
        assert queued(runtime) in (before, before + 1)
    else:
        assert queued(runtime) == before
