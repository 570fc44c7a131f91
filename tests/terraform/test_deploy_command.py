"""`branchenv deploy` and `branchenv destroy-all` with fakes passed in: a recording
Terraform, a `which` that finds nothing, no credentials, a user who says no. The
python-terraform adapter is run against a stand-in terraform executable."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from chalicelib.tools.cli import CommandError, main
from chalicelib.tools.commands import deploy as command
from chalicelib.tools.deploy import OVERRIDE_FILE, DeployError, Plan, PythonTerraform

SECRETS = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:demo"
OUTPUTS = {
    "webhook_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/github/webhook",
    "webhook_secret_arn": f"{SECRETS}/webhook-secret-Ab12",
    "github_token_arn": f"{SECRETS}/github-token-Cd34",
    "slack_token_arn": f"{SECRETS}/slack-token-Ef56",
    "table_name": "demo-environments",
    "region": "eu-west-1",
}
PLAN_TEXT = "Plan: 61 to add, 0 to change, 0 to destroy."
TEMPLATE = {
    "resource": {"aws_lambda_function": {"worker": {"tags": {}}}},
    "terraform": {"required_version": ">= 0.12.26, < 1.4.0"},
}


class FakeTerraform:
    """Records what the deployer asked terraform to do."""

    def __init__(self, *, has_changes: bool = True) -> None:
        self.calls: list[str] = []
        self._has_changes = has_changes

    def init(self) -> None:
        self.calls.append("init")

    def plan(self, var_file: Path, plan_file: Path, *, destroy: bool = False) -> Plan:
        self.calls.append("plan --destroy" if destroy else "plan")
        return Plan(plan_file, has_changes=self._has_changes, text=PLAN_TEXT)

    def apply(self, plan: Plan) -> None:
        self.calls.append("apply")

    def outputs(self) -> dict[str, Any]:
        self.calls.append("outputs")
        return dict(OUTPUTS)


def fake_chalice(command_line: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
    """Stands in for `chalice package`: writes a template into the output folder."""
    out = Path(command_line[-1])
    (out / "chalice.tf.json").write_text(json.dumps(TEMPLATE))
    return subprocess.CompletedProcess(list(command_line), 0, "", "")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal checkout: app.py, chalicelib, the Chalice config, pyproject, tfvars."""
    (tmp_path / "app.py").write_text("")
    (tmp_path / "chalicelib").mkdir()
    (tmp_path / "chalicelib" / "__init__.py").write_text("")
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text("{}")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["PyGithub>=2"]\n')
    (tmp_path / "terraform").mkdir()
    (tmp_path / "terraform" / "terraform.tfvars").write_text('app_name = "demo"\n')
    return tmp_path


def tools(terraform: FakeTerraform, lines: list[str], **overrides: Any) -> command.Tools:
    defaults: dict[str, Any] = {
        "which": lambda name: f"/usr/bin/{name}",
        "has_credentials": lambda: True,
        "region": lambda: "eu-west-1",
        "terraform": lambda directory, binary: terraform,
        "confirm": lambda question: True,
        "echo": lines.append,
        "live_environments": lambda outputs: [],
        "run": fake_chalice,
    }
    return command.Tools(**{**defaults, **overrides})


def args(project: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["deploy", "--project-dir", str(project), *extra])


def never_asked(question: str) -> bool:
    raise AssertionError(f"asked {question!r} despite --yes")


def test_deploy_shows_the_plan_and_applies_after_yes(project: Path) -> None:
    terraform, lines = FakeTerraform(), []
    assert command.run_deploy(args(project), tools(terraform, lines)) == 0
    assert terraform.calls == ["init", "plan", "apply", "outputs"]
    assert PLAN_TEXT in lines


def test_deploy_prints_the_webhook_settings(project: Path) -> None:
    lines: list[str] = []
    command.run_deploy(args(project), tools(FakeTerraform(), lines))
    text = "\n".join(lines)
    assert f"Payload URL:   {OUTPUTS['webhook_url']}" in text
    assert f"Webhook secret ARN: {OUTPUTS['webhook_secret_arn']}" in text
    assert "application/json" in text


def test_deploy_declined_changes_nothing(project: Path) -> None:
    terraform, lines = FakeTerraform(), []
    fakes = tools(terraform, lines, confirm=lambda question: False)
    assert command.run_deploy(args(project), fakes) == 1
    assert "apply" not in terraform.calls
    assert "Nothing was changed." in lines


def test_deploy_with_yes_does_not_ask(project: Path) -> None:
    terraform = FakeTerraform()
    fakes = tools(terraform, [], confirm=never_asked)
    assert command.run_deploy(args(project, "--yes"), fakes) == 0
    assert "apply" in terraform.calls


def test_deploy_without_changes_applies_nothing(project: Path) -> None:
    terraform, lines = FakeTerraform(has_changes=False), []
    assert command.run_deploy(args(project), tools(terraform, lines, confirm=never_asked)) == 0
    assert terraform.calls == ["init", "plan", "outputs"]


def test_deploy_writes_the_override_next_to_the_package(project: Path) -> None:
    command.run_deploy(args(project), tools(FakeTerraform(), []))
    override = json.loads((project / "terraform" / "chalice" / OVERRIDE_FILE).read_text())
    assert override["resource"]["aws_lambda_function"]["worker"]["role"] == "${var.role_arn}"
    assert (project / ".deploy" / "app" / "requirements.txt").read_text() == "PyGithub>=2\n"


def test_deploy_without_terraform_says_how_to_install_it(project: Path) -> None:
    fakes = tools(FakeTerraform(), [], which=lambda name: None)
    with pytest.raises(CommandError, match="terraform is not on PATH: install Terraform"):
        command.run_deploy(args(project), fakes)


def test_deploy_without_credentials_says_how_to_get_them(project: Path) -> None:
    terraform = FakeTerraform()
    fakes = tools(terraform, [], has_credentials=lambda: False)
    with pytest.raises(CommandError, match="no AWS credentials found: set AWS_PROFILE"):
        command.run_deploy(args(project), fakes)
    assert terraform.calls == []


def test_deploy_without_region_says_how_to_set_it(project: Path) -> None:
    fakes = tools(FakeTerraform(), [], region=lambda: None)
    with pytest.raises(CommandError, match="no AWS region: set AWS_REGION"):
        command.run_deploy(args(project), fakes)


def test_deploy_without_variables_points_at_the_example(project: Path) -> None:
    (project / "terraform" / "terraform.tfvars").unlink()
    with pytest.raises(CommandError, match=r"examples/complete/example\.tfvars"):
        command.run_deploy(args(project), tools(FakeTerraform(), []))


def test_failed_chalice_package_is_one_line(project: Path) -> None:
    def failing(command_line: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(command_line), 2, "", "Traceback\nBoom: bad app\n")

    with pytest.raises(DeployError, match="chalice package failed: Boom: bad app"):
        command.run_deploy(args(project), tools(FakeTerraform(), [], run=failing))


def test_destroy_all_refuses_while_environments_are_live(project: Path) -> None:
    terraform = FakeTerraform()

    def live(outputs: Mapping[str, Any]) -> list[str]:
        assert outputs["table_name"] == "demo-environments"
        return ["feature-login", "main"]

    fakes = tools(terraform, [], live_environments=live)
    with pytest.raises(
        CommandError, match=r"2 environment\(s\) still live \(feature-login, main\)"
    ):
        command.run_destroy_all(args(project), fakes)
    assert "apply" not in terraform.calls


def test_destroy_all_destroys_once_nothing_is_live(project: Path) -> None:
    terraform, lines = FakeTerraform(), []
    assert command.run_destroy_all(args(project), tools(terraform, lines)) == 0
    assert terraform.calls == ["init", "outputs", "plan --destroy", "apply"]


def test_destroy_all_declined_destroys_nothing(project: Path) -> None:
    terraform = FakeTerraform()
    fakes = tools(terraform, [], confirm=lambda question: False)
    assert command.run_destroy_all(args(project), fakes) == 1
    assert "apply" not in terraform.calls


def test_cli_reports_a_missing_piece_in_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "terraform" / "terraform.tfvars").unlink()
    assert main(["deploy", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("branchenv: ")
    assert len(err.strip().splitlines()) == 1


# --- the python-terraform adapter against a stand-in terraform --------------------------

STAND_IN = """\
#!/bin/sh
echo "$@" >> "{log}"
case "$1" in
  init)
    if [ -n "{fail_init}" ]; then
      echo 'Error: Failed to query available provider packages' >&2
      exit 1
    fi ;;
  plan) echo 'Plan: 3 to add, 0 to change, 0 to destroy.'; exit 2 ;;
  apply) exit 0 ;;
  output) echo '{{"webhook_url": {{"value": "https://x/api/github/webhook"}}}}' ;;
esac
"""


def stand_in_terraform(tmp_path: Path, *, fail_init: bool = False) -> tuple[str, Path]:
    log = tmp_path / "terraform.log"
    binary = tmp_path / "terraform"
    binary.write_text(STAND_IN.format(log=log, fail_init="yes" if fail_init else ""))
    binary.chmod(0o755)
    return str(binary), log


def test_adapter_plans_with_the_variables_and_saves_the_plan(tmp_path: Path) -> None:
    binary, log = stand_in_terraform(tmp_path)
    plan = PythonTerraform(tmp_path, binary).plan(tmp_path / "x.tfvars", tmp_path / "p.tfplan")
    line = log.read_text()
    assert plan.has_changes
    assert "Plan: 3 to add" in plan.text
    assert f"-var-file={tmp_path / 'x.tfvars'}" in line
    assert f"-out={tmp_path / 'p.tfplan'}" in line
    assert "-detailed-exitcode" in line


def test_adapter_applies_the_saved_plan_without_asking(tmp_path: Path) -> None:
    binary, log = stand_in_terraform(tmp_path)
    PythonTerraform(tmp_path, binary).apply(Plan(tmp_path / "p.tfplan", True, ""))
    words = log.read_text().split()
    assert words[0] == "apply"
    assert "-auto-approve=true" in words
    assert words[-1] == str(tmp_path / "p.tfplan")
    assert not [w for w in words if w.startswith("-var")]


def test_adapter_destroy_plan_uses_destroy_not_force(tmp_path: Path) -> None:
    binary, log = stand_in_terraform(tmp_path)
    PythonTerraform(tmp_path, binary).plan(tmp_path / "x", tmp_path / "p", destroy=True)
    words = log.read_text().split()
    assert "-destroy" in words
    assert "-force" not in words


def test_adapter_reads_output_values(tmp_path: Path) -> None:
    binary, _ = stand_in_terraform(tmp_path)
    outputs = PythonTerraform(tmp_path, binary).outputs()
    assert outputs == {"webhook_url": "https://x/api/github/webhook"}


def test_adapter_reports_the_terraform_error_line(tmp_path: Path) -> None:
    binary, _ = stand_in_terraform(tmp_path, fail_init=True)
    with pytest.raises(DeployError, match="terraform init failed: Error: Failed to query"):
        PythonTerraform(tmp_path, binary).init()
