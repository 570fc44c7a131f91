"""Signature verification and payload parsing on GitHub's real example payloads."""

from __future__ import annotations

import pytest

from chalicelib.domain.messages import BranchEvent
from chalicelib.handlers.webhooks import (
    Ignored,
    MalformedPayload,
    Ping,
    parse,
    sign,
    verify_signature,
)
from tests.conftest import load_event

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_test_vector_verifies() -> None:
    assert sign(GITHUB_BODY, GITHUB_SECRET) == GITHUB_SIGNATURE
    assert verify_signature(GITHUB_BODY, GITHUB_SIGNATURE, [GITHUB_SECRET])


def test_a_rotated_secret_still_verifies_while_both_are_configured() -> None:
    assert verify_signature(GITHUB_BODY, GITHUB_SIGNATURE, ["new-secret", GITHUB_SECRET])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        GITHUB_SIGNATURE.upper(),
        GITHUB_SIGNATURE[:-1] + "0",
    ],
)
def test_wrong_or_missing_signatures_fail(header: str | None) -> None:
    assert not verify_signature(GITHUB_BODY, header, [GITHUB_SECRET])


def test_a_changed_body_fails() -> None:
    assert not verify_signature(b"Hello, World?", GITHUB_SIGNATURE, [GITHUB_SECRET])


def test_no_configured_secret_fails_closed() -> None:
    assert not verify_signature(GITHUB_BODY, GITHUB_SIGNATURE, [])


def test_push_to_a_branch_wants_it_present_at_the_new_sha() -> None:
    payload = load_event("github/push.webhooks-js.branch-update.payload")
    event = parse("push", payload, "d-1")
    assert isinstance(event, BranchEvent)
    assert (event.repository, event.branch, event.desired) == (
        "baxterthehacker/public-repo",
        "changes",
        "present",
    )
    assert event.sha == payload["after"]
    assert event.ordering == float(payload["repository"]["pushed_at"])
    assert event.commit_url == payload["head_commit"]["url"]


def test_push_that_deletes_a_branch_wants_it_absent() -> None:
    event = parse("push", load_event("github/push.branch-deleted.derived"), "d-2")
    assert isinstance(event, BranchEvent)
    assert (event.branch, event.desired, event.sha) == ("feature/login", "absent", None)


def test_create_and_delete_of_a_branch() -> None:
    created = parse("create", load_event("github/create.branch.derived"), "d-3")
    deleted = parse("delete", load_event("github/delete.branch.derived"), "d-4")
    assert isinstance(created, BranchEvent) and isinstance(deleted, BranchEvent)
    assert (created.desired, created.sha, created.branch) == ("present", None, "feature/login")
    assert deleted.desired == "absent"
    assert created.ordering > 1.5e9  # ISO-8601 pushed_at read as Unix seconds


@pytest.mark.parametrize(
    ("event", "fixture", "reason"),
    [
        ("create", "github/create.payload", "tag"),
        ("delete", "github/delete.payload", "tag"),
        ("push", "github/push.payload", "not to a branch"),
        ("push", "github/push.ghes-35.tag-created.payload", "not to a branch"),
        ("push", "github/push.with-new-branch.payload", "default branch"),
        ("pull_request", "github/pull_request.opened.payload", "not one branchenv acts on"),
    ],
)
def test_tags_default_branch_and_other_events_are_ignored_with_a_reason(
    event: str, fixture: str, reason: str
) -> None:
    outcome = parse(event, load_event(fixture), "d-5")
    assert isinstance(outcome, Ignored)
    assert reason in outcome.reason


def test_ping_is_recognised() -> None:
    outcome = parse("ping", load_event("github/ping.payload"), "d-6")
    assert isinstance(outcome, Ping) and outcome.zen


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"ref": "refs/heads/x"},
        {"ref": "refs/heads/x", "repository": {}},
        {"ref": "refs/heads/x", "after": "nope", "repository": {"full_name": "o/r"}},
        {"ref": 5, "repository": {"full_name": "o/r"}},
    ],
)
def test_payloads_that_are_not_githubs_are_malformed(payload: object) -> None:
    with pytest.raises(MalformedPayload):
        parse("push", payload, "d-7")
