"""Runs the real terraform binary on small scratch modules, offline.

A scratch module holds copies of files from terraform/ (its variables, a generated package's
locals) plus a few lines a test writes, and uses no provider but Terraform's built-in one,
so ``terraform init``/``plan``/``apply`` need no network and take a fraction of a second.
Tests use it to check what only Terraform can say: that a variable validation or a
precondition really refuses a value, that an override file's template renders. Tests that
use it skip where terraform is not installed (:data:`needs_terraform`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None, reason="terraform is not installed"
)

# No version check against the network, no CLI configuration of this machine.
_ENVIRON = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}


class Scratch:
    """One scratch module in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def copy(self, source: Path, name: str | None = None) -> None:
        shutil.copy2(source, self.directory / (name or source.name))

    def write(self, name: str, text: str) -> None:
        (self.directory / name).write_text(text)

    def run(
        self, *args: str, variables: Mapping[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``terraform <args>`` (after init) with ``variables`` from a JSON var file."""
        command = ["terraform", *args, "-no-color", "-input=false"]
        if variables is not None:
            var_file = self.directory / "scratch.auto.tfvars.json"
            var_file.write_text(json.dumps(dict(variables)))
        if not (self.directory / ".terraform").exists() and args[0] != "init":
            init = self.run("init")
            assert init.returncode == 0, init.stderr
        return subprocess.run(
            command,
            cwd=self.directory,
            env={**os.environ, **_ENVIRON},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def plan(self, variables: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("plan", variables=variables)

    def outputs(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Apply (only outputs and terraform_data: nothing outside this folder) and read
        the outputs."""
        applied = self.run("apply", "-auto-approve", variables=variables)
        assert applied.returncode == 0, applied.stderr
        read = subprocess.run(
            ["terraform", "output", "-json"],
            cwd=self.directory,
            env={**os.environ, **_ENVIRON},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return {name: value["value"] for name, value in json.loads(read.stdout).items()}


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """What terraform said when it refused, on one line; "" when it accepted."""
    if result.returncode == 0:
        return ""
    return " ".join(result.stderr.split())
