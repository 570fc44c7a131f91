"""Step 3 of a deploy, the Terraform side: what the deployer asks of Terraform.

:class:`Terraform` is the protocol :class:`~chalicelib.tools.deploy.deployer.Deployer` uses
(tests pass a fake); :class:`PythonTerraform` implements it with python-terraform, which
is imported only when one is built. A saved :class:`Plan` carries whether it changes
anything and what terraform printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chalicelib.tools.deploy.errors import DeployError, last_error_line


@dataclass(frozen=True)
class Plan:
    """A saved plan: whether it changes anything, and what terraform printed."""

    path: Path
    has_changes: bool
    text: str


class Terraform(Protocol):
    """What :class:`Deployer` needs from Terraform (python-terraform in real use)."""

    def init(self) -> None: ...

    def plan(self, var_file: Path, plan_file: Path, *, destroy: bool = False) -> Plan: ...

    def apply(self, plan: Plan) -> None: ...

    def outputs(self) -> dict[str, Any]: ...


class PythonTerraform:
    """:class:`Terraform` through python-terraform, for the module in ``working_dir``."""

    def __init__(self, working_dir: Path, terraform_bin: str = "terraform") -> None:
        from python_terraform import Terraform as _Terraform

        self._tf = _Terraform(working_dir=str(working_dir), terraform_bin_path=terraform_bin)

    def init(self) -> None:
        self._check("init", self._tf.init(reconfigure=None))

    def plan(self, var_file: Path, plan_file: Path, *, destroy: bool = False) -> Plan:
        options: dict[str, Any] = {
            "var_file": str(var_file.resolve()),
            "out": str(plan_file.resolve()),
            "input": False,
            "var": None,
        }
        if destroy:
            options["destroy"] = _flag()
        code, out, err = self._tf.plan(**options)
        # -detailed-exitcode: 0 no changes, 2 changes, 1 error.
        if code not in (0, 2):
            raise DeployError(f"terraform plan failed: {last_error_line(err or out)}")
        return Plan(plan_file, has_changes=code == 2, text=out or "")

    def apply(self, plan: Plan) -> None:
        # var=None: python-terraform would otherwise add an empty -var-file, which
        # terraform refuses with a saved plan.
        applied = self._tf.apply(str(plan.path.resolve()), skip_plan=True, var=None)
        self._check("apply", applied)

    def outputs(self) -> dict[str, Any]:
        raw = self._tf.output()
        if raw is None:
            raise DeployError("terraform output failed: is there a state in terraform/?")
        return {name: value.get("value") for name, value in raw.items()}

    @staticmethod
    def _check(command: str, result: tuple[int, str | None, str | None]) -> None:
        code, out, err = result
        if code != 0:
            raise DeployError(f"terraform {command} failed: {last_error_line(err or out)}")


def _flag() -> Any:
    from python_terraform import IsFlagged

    return IsFlagged
