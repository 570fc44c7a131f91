"""`make demo` runs `branchenv demo`: it must play the whole story and exit 0."""

from __future__ import annotations

import pytest

import app as app_module
from chalicelib.cli import main

pytestmark = pytest.mark.e2e


def test_demo_command_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    missing = [n for n in ("codebuild_state", "ecs_deployment") if not hasattr(app_module, n)]
    if missing:
        pytest.skip(f"app.py has no {', '.join(missing)} handler yet")

    code = main(["demo"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "the story is complete" in out
