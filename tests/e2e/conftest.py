"""The whole local stack on free loopback ports, started once per test module.

Tests talk to it over real HTTP (webhooks, dashboard API, /_local controls) and look into
moto through its endpoint; nothing is patched.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.names import names_for
from chalicelib.local.stack import LocalStack, StackOptions
from chalicelib.tools.commands.webhook import Reply, build_delivery, send, set_branch

REPOSITORY = "octo-org/shop"
SECRET = "e2e-webhook-secret"
WAIT_SECONDS = 30.0
TIME_FACTOR = 300


def stack_options(**changes: Any) -> StackOptions:
    """The end-to-end tests' stack: free ports, a fast build, no scheduled sweep, and time
    300x faster than AWS's (1800 s visibility -> 6 s, the worker's waits -> 1 s, 15 s rule
    propagation -> 0.05 s: AWS's order of events, at a pace a test can wait for)."""
    options = StackOptions(
        port=0,
        aws_port=0,
        stub_port=0,
        alb_port=0,
        webhook_secret=SECRET,
        app_name="e2e",
        build_seconds=0.3,
        reap_seconds=3600,
        time_factor=TIME_FACTOR,
    )
    return replace(options, **changes)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(stack_options()) as running:
        yield running


def slug_of(stack: LocalStack, branch: str) -> str:
    settings = stack.runtime.settings
    return names_for(settings.app_name, REPOSITORY, branch, settings.preview_domain).slug


def push(stack: LocalStack, branch: str, sha: str, secret: str = SECRET) -> Reply:
    """What GitHub does on a push: the branch moves, then the signed webhook is sent."""
    set_branch(stack.stub_url, REPOSITORY, branch, sha, exists=True)
    delivery = build_delivery("push", repository=REPOSITORY, branch=branch, sha=sha)
    return send(f"{stack.app_url}/github/webhook", delivery, secret)


def delete(stack: LocalStack, branch: str) -> Reply:
    """What GitHub does when a branch is deleted: it is gone, then the signed webhook."""
    set_branch(stack.stub_url, REPOSITORY, branch, "", exists=False)
    delivery = build_delivery("delete", repository=REPOSITORY, branch=branch)
    return send(f"{stack.app_url}/github/webhook", delivery, SECRET)


def get_json(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode("utf-8", "replace")


def wait_for_environment(
    stack: LocalStack,
    slug: str,
    done: Callable[[dict[str, Any]], bool],
    poll_seconds: float = 0.2,
) -> dict[str, Any]:
    """Poll ``GET /api/environments/{slug}`` until ``done(record)``; the last record."""
    deadline = time.monotonic() + WAIT_SECONDS
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = get_json(f"{stack.app_url}/api/environments/{slug}")
        if status == 200 and isinstance(body, dict):
            record = body.get("environment", body)
            if done(record):
                return record
        time.sleep(poll_seconds)
    return record
