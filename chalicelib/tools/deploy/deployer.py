"""The deploy itself: :class:`Deployer` packages, plans, confirms and applies (or destroys).

It runs the Chalice package (:mod:`chalicelib.tools.deploy.package`) and the override
(:mod:`chalicelib.tools.deploy.override`) into ``terraform/chalice/``, then ``terraform init``,
``plan`` (shown, then confirmed) and ``apply`` through a
:class:`~chalicelib.tools.deploy.terraform.Terraform` runner, and reads the outputs. Destroying
the installation is refused while an environment is still live.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.tools.deploy.errors import DeployError
from chalicelib.tools.deploy.override import write_override
from chalicelib.tools.deploy.package import Runner, lambda_requirements, package_app, stage_project
from chalicelib.tools.deploy.terraform import Terraform

PACKAGE_FOLDER = "chalice"
PLAN_FILE = "branchenv.tfplan"
STAGING_FOLDER = Path(".deploy") / "app"


@dataclass
class Deployer:
    """Deploys (or destroys) one installation: package, plan, confirm, apply."""

    project: Path
    terraform: Terraform
    var_file: Path
    region: str
    confirm: Callable[[str], bool]
    echo: Callable[[str], None]
    run: Runner = field(default=subprocess.run)

    @property
    def terraform_dir(self) -> Path:
        return self.project / "terraform"

    def package(self) -> None:
        """Generate the Chalice package and its override into terraform/chalice/."""
        requirements = lambda_requirements((self.project / "pyproject.toml").read_text())
        staging = stage_project(self.project, self.project / STAGING_FOLDER, requirements)
        package_dir = self.terraform_dir / PACKAGE_FOLDER
        self.echo(f"Packaging the app with Chalice into {package_dir} ...")
        package_app(staging, package_dir, self.region, self.run)
        write_override(package_dir)

    def deploy(self, *, assume_yes: bool) -> dict[str, Any] | None:
        """Apply the plan after showing it; return the outputs, or None when declined."""
        self._check_var_file()
        self.package()
        self.terraform.init()
        plan = self.terraform.plan(self.var_file, self.terraform_dir / PLAN_FILE)
        self.echo(plan.text)
        if plan.has_changes:
            if not assume_yes and not self.confirm("Apply this plan?"):
                self.echo("Nothing was changed.")
                return None
            self.terraform.apply(plan)
        else:
            self.echo("No changes: the installation is up to date.")
        return self.terraform.outputs()

    def destroy(
        self,
        *,
        assume_yes: bool,
        live_environments: Callable[[Mapping[str, Any]], Sequence[str]],
    ) -> bool:
        """Destroy the installation once no environment is live; False when declined.
        ``live_environments`` gets the current outputs and lists the live slugs."""
        self._check_var_file()
        self.package()
        self.terraform.init()
        live = list(live_environments(self.terraform.outputs()))
        if live:
            shown = ", ".join(live[:10]) + (" ..." if len(live) > 10 else "")
            raise DeployError(
                f"{len(live)} environment(s) still live ({shown}): delete their branches "
                "(or let the reaper remove them) and run destroy-all again"
            )
        plan = self.terraform.plan(self.var_file, self.terraform_dir / PLAN_FILE, destroy=True)
        self.echo(plan.text)
        if not assume_yes and not self.confirm("Destroy every resource of this installation?"):
            self.echo("Nothing was destroyed.")
            return False
        self.terraform.apply(plan)
        return True

    def _check_var_file(self) -> None:
        if not self.var_file.is_file():
            raise DeployError(
                f"{self.var_file} not found: copy terraform/examples/complete/example.tfvars "
                "there, fill in your VPC, subnets, hosted zone and preview domain, and run again"
            )
