"""Fixtures shared by the Terraform tests: the Chalice package of this checkout, generated
once per test session (offline, as `branchenv deploy` does), and its override file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.tools.deploy import (
    GENERATED_TEMPLATE,
    OVERRIDE_FILE,
    package_app,
    stage_project,
    write_override,
)
from tests.terraform.hcl import ROOT

REGION = "us-east-1"


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chalice package of this checkout; no requirements, so nothing is downloaded."""
    base = tmp_path_factory.mktemp("package")
    staging = stage_project(ROOT, base / "stage", requirements=[])
    out = base / "chalice"
    package_app(staging, out, REGION)
    write_override(out)
    return out


@pytest.fixture(scope="session")
def template(package_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package_dir / GENERATED_TEMPLATE).read_text())
    return loaded


@pytest.fixture(scope="session")
def override(package_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package_dir / OVERRIDE_FILE).read_text())
    return loaded
