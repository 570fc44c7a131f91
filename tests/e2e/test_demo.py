"""`make demo` runs `branchenv demo`: it must play the whole story and exit 0."""

from __future__ import annotations

import pytest

from chalicelib.tools.cli import main

pytestmark = pytest.mark.e2e


def test_demo_command_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "the story is complete" in out
