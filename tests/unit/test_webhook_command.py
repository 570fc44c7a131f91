"""`branchenv webhook send`: GitHub-shaped payloads the intake accepts, signed as GitHub signs."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.messages import BranchEvent
from chalicelib.handlers.webhooks import parse
from chalicelib.local.stack import free_port
from chalicelib.tools.cli import main
from chalicelib.tools.commands.webhook import build_delivery

SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def test_push_payload_parses_as_a_present_branch_at_the_sha() -> None:
    delivery = build_delivery("push", repository="octo-org/shop", branch="feature/a", sha=SHA)

    event = parse("push", json.loads(delivery.body), delivery.delivery_id)

    assert isinstance(event, BranchEvent)
    assert (event.repository, event.branch, event.desired, event.sha) == (
        "octo-org/shop",
        "feature/a",
        "present",
        SHA,
    )


def test_delete_payload_parses_as_an_absent_branch() -> None:
    delivery = build_delivery("delete", repository="octo-org/shop", branch="feature/a")

    event = parse("delete", json.loads(delivery.body), delivery.delivery_id)

    assert isinstance(event, BranchEvent)
    assert event.desired == "absent"


def test_create_payload_parses_as_a_present_branch() -> None:
    delivery = build_delivery("create", repository="octo-org/shop", branch="feature/a")

    event = parse("create", json.loads(delivery.body), delivery.delivery_id)

    assert isinstance(event, BranchEvent)
    assert event.desired == "present"


def test_later_push_is_ordered_after_an_earlier_one() -> None:
    first = build_delivery("push", repository="o/r", branch="b", sha=SHA, pushed_at=100.0)
    second = build_delivery("push", repository="o/r", branch="b", sha=SHA, pushed_at=101.0)

    a = parse("push", json.loads(first.body), first.delivery_id)
    b = parse("push", json.loads(second.body), second.delivery_id)

    assert isinstance(a, BranchEvent)
    assert isinstance(b, BranchEvent)
    assert a.ordering < b.ordering


def test_send_to_a_closed_port_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/github/webhook"

    code = main(["webhook", "send", "--branch", "feature/a", "--url", url])

    assert code == 2
    assert "is it running?" in capsys.readouterr().err


def test_a_short_sha_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["webhook", "send", "--branch", "feature/a", "--sha", "abc123"])

    assert code == 2
    assert "--sha" in capsys.readouterr().err
