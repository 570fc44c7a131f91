"""Step 1 of a deploy: the Chalice package of the app, for Terraform.

:func:`stage_project` copies what the Lambda runs into a build folder with the Lambda's
requirements (:func:`lambda_requirements`), and :func:`package_app` runs ``chalice package
--pkg-format terraform`` there, writing ``chalice.tf.json`` (:data:`GENERATED_TEMPLATE`)
and ``deployment.zip`` into the output folder; the template is then rewritten to need only
the AWS provider (:mod:`chalicelib.tools.deploy.one_provider`). Needs no AWS call.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.tools.deploy.errors import DeployError, last_error_line
from chalicelib.tools.deploy.one_provider import one_provider_template

STAGE = "prod"
GENERATED_TEMPLATE = "chalice.tf.json"

# Provided by the Lambda runtime (boto3, botocore) or used only on the operator's machine.
NOT_FOR_LAMBDA = frozenset({"chalice", "boto3", "botocore", "python-terraform"})
# What the Lambda never imports: the embedded local stack.
NOT_PACKAGED = ("local", "tools", "__pycache__")


def lambda_requirements(pyproject_text: str) -> list[str]:
    """The project's runtime dependencies that the Lambda needs (its requirements.txt)."""
    dependencies: list[str] = tomllib.loads(pyproject_text)["project"]["dependencies"]
    return [d for d in dependencies if _distribution(d) not in NOT_FOR_LAMBDA]


def _distribution(requirement: str) -> str:
    name = requirement
    for stop in "<>=!~[; ":
        name = name.split(stop, 1)[0]
    return name.strip().lower().replace("_", "-")


def stage_project(project: Path, staging: Path, requirements: Sequence[str]) -> Path:
    """Copy what the Lambda runs (app.py, chalicelib/, .chalice/config.json) into
    ``staging`` with a requirements.txt; return ``staging``. Replaces an older copy."""
    if not (project / "app.py").is_file():
        raise DeployError(f"no app.py in {project}: run this from the branchenv checkout")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / ".chalice").mkdir(parents=True)
    shutil.copy2(project / "app.py", staging / "app.py")
    shutil.copy2(project / ".chalice" / "config.json", staging / ".chalice" / "config.json")
    shutil.copytree(
        project / "chalicelib", staging / "chalicelib", ignore=shutil.ignore_patterns(*NOT_PACKAGED)
    )
    (staging / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    return staging


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def package_app(
    staging: Path, out: Path, region: str, run: Runner = subprocess.run
) -> dict[str, Any]:
    """Run ``chalice package --pkg-format terraform`` in ``staging`` into ``out``; return
    the generated template. Needs no AWS call (only the region to name ARNs)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-c",
        "import sys; from chalice.cli import main; sys.exit(main())",
        "package",
        "--stage",
        STAGE,
        "--pkg-format",
        "terraform",
        str(out.resolve()),
    ]
    # The child inherits this process's environment (PATH, proxies); Chalice only needs the
    # region to write ARNs, so it is set explicitly.
    environ = {**os.environ, "AWS_DEFAULT_REGION": region}
    done = run(command, cwd=staging, env=environ, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DeployError(f"chalice package failed: {last_error_line(done.stderr or done.stdout)}")
    generated = json.loads((out / GENERATED_TEMPLATE).read_text())
    # One provider (hashicorp/aws) and no deprecated attribute: see one_provider.py.
    template = one_provider_template(generated)
    (out / GENERATED_TEMPLATE).write_text(json.dumps(template, indent=2) + "\n")
    return template
