"""``branchenv plan``: prints the rendered requests and the policy verdict, changes nothing."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.tools.cli import CommandError
from chalicelib.tools.commands import plan as plan_command
from chalicelib.tools.commands.plan import PLACEHOLDER_SHA, PlanRequest, plan
from tests.unit.test_repoconfig import BASE_ENVIRON, minimal_settings

SHA = "e" * 40
SSM_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/db-url"
SETTINGS = minimal_settings(allowed_repositories=frozenset({"acme/shop"}))


class FakeGitHub:
    """Files and branch heads of one repository, as GitHub would answer."""

    def __init__(self, files: dict[tuple[str, str], str], heads: dict[str, str]) -> None:
        self.files = files
        self.heads = heads
        self.reads: list[tuple[str, str, str]] = []

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        self.reads.append((repository, path, ref))
        return self.files.get((path, ref))

    def branch_head(self, repository: str, branch: str) -> str | None:
        return self.heads.get(branch)


def run(
    request: PlanRequest, source: FakeGitHub | None = None, **settings: Any
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    chosen = minimal_settings(**settings) if settings else SETTINGS
    code = plan(request, settings=chosen, source=source, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def rendered_json(output: str) -> dict[str, Any]:
    document, _, _ = output.rpartition("\npolicy:")
    parsed: dict[str, Any] = json.loads(document)
    return parsed


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "branchenv.yml"
    path.write_text(text)
    return path


def test_plan_with_a_config_file_prints_both_requests_and_passes(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"env:\n  URL: '${{PREVIEW_URL}}'\nsecrets:\n  DB: {SSM_ARN}\n")
    code, out, _ = run(PlanRequest("feature/login", sha=SHA, config_file=config))
    assert code == 0
    assert out.endswith("policy: passed\n")
    container = rendered_json(out)["taskDefinition"]["containerDefinitions"][0]
    assert container["image"] == f"demo:{SHA}"
    assert container["secrets"] == [{"name": "DB", "valueFrom": SSM_ARN}]
    assert rendered_json(out)["service"]["taskDefinition"] == "(created by converge)"


def test_plan_reports_policy_failures_and_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, "env:\n  API_TOKEN: ghp_plaintoken\n")
    request = PlanRequest("feature/login", sha=SHA, config_file=config, image="demo:latest")
    code, out, _ = run(request)
    assert code == 1
    assert "policy: failed\n  - image-tag: container app image demo:latest uses" in out
    assert "  - env-secret-name: env API_TOKEN looks like a secret" in out


def test_plan_never_prints_a_value_pasted_into_secrets(tmp_path: Path) -> None:
    config = write_config(tmp_path, "secrets:\n  API_TOKEN: ghp_plaintoken\n")
    code, out, _ = run(PlanRequest("feature/login", sha=SHA, config_file=config))
    assert code == 1
    assert "ghp_plaintoken" not in out
    assert "branchenv.yml line 2: secrets.API_TOKEN: must be an SSM" in out


def test_plan_reports_a_port_the_security_groups_do_not_open(tmp_path: Path) -> None:
    config = write_config(tmp_path, "service:\n  container_port: 3000\n")
    request = PlanRequest("feature/login", sha=SHA, config_file=config)
    code, out, _ = run(
        request, container_ports=(8000, 9000), allowed_repositories=frozenset({"acme/shop"})
    )
    assert code == 1
    assert rendered_json(out)["service"]["loadBalancers"][0]["containerPort"] == 3000
    assert (
        "policy: failed\n  - container-port: service.container_port 3000 in branchenv.yml is "
        "outside the ports the security groups open from the load balancers to the tasks "
        "(8000-9000)"
    ) in out
    assert "Terraform variable container_port_range" in out


def test_plan_with_an_invalid_file_says_where(tmp_path: Path) -> None:
    config = write_config(tmp_path, "service:\n  cpu: 300\n")
    code, out, _ = run(PlanRequest("feature/login", sha=SHA, config_file=config))
    assert code == 1
    assert out == (
        "policy: failed\n  - branchenv.yml line 2: service.cpu: must be one of "
        "256, 512, 1024, 2048, 4096, got 300\n"
    )


def test_plan_for_a_filtered_branch_says_it_gets_no_preview(tmp_path: Path) -> None:
    config = write_config(tmp_path, "branches:\n  include: ['feature/**']\n")
    code, out, _ = run(PlanRequest("fix/typo", sha=SHA, config_file=config))
    assert code == 0
    assert out.startswith("branch fix/typo gets no preview")


def test_plan_for_the_default_branch_says_it_gets_no_preview() -> None:
    code, out, _ = run(PlanRequest("main", sha=SHA))
    assert code == 0
    assert out.startswith("branch main gets no preview")


def test_plan_reads_the_file_from_github_at_the_branch_head() -> None:
    github = FakeGitHub(
        files={("branchenv.yml", SHA): "service:\n  desired_count: 2\n"},
        heads={"feature/login": SHA},
    )
    code, out, _ = run(PlanRequest("feature/login"), github)
    assert code == 0
    assert github.reads == [("acme/shop", "branchenv.yml", SHA)]
    assert rendered_json(out)["service"]["desiredCount"] == 2


def test_plan_for_a_repository_without_the_file_uses_the_defaults() -> None:
    github = FakeGitHub(files={}, heads={"feature/login": SHA})
    code, out, err = run(PlanRequest("feature/login"), github)
    assert code == 0
    assert "acme/shop has no branchenv.yml at eeeeeeeeeeee; using the defaults" in err
    assert rendered_json(out)["taskDefinition"]["cpu"] == "256"


def test_plan_for_a_branch_missing_on_github_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="branch feature/gone of acme/shop was not found"):
        run(PlanRequest("feature/gone"), FakeGitHub(files={}, heads={}))


def test_plan_without_github_or_file_notes_the_defaults_and_placeholder_sha() -> None:
    code, out, err = run(PlanRequest("feature/login"))
    assert code == 0
    assert f"rendering with {PLACEHOLDER_SHA}" in err
    assert "no --config and no GitHub token configured" in err
    assert rendered_json(out)["taskDefinition"]["containerDefinitions"][0]["image"] == (
        f"demo:{PLACEHOLDER_SHA}"
    )


def test_plan_needs_a_repository_when_several_are_allowed() -> None:
    request = PlanRequest("feature/login", sha=SHA)
    with pytest.raises(CommandError, match="pass --repository"):
        run(request, allowed_repositories=frozenset({"acme/a", "acme/b"}))


def test_plan_rejects_a_short_sha() -> None:
    with pytest.raises(CommandError, match="--sha must be a full 40-character commit id"):
        run(PlanRequest("feature/login", sha="abc123"))


def test_plan_with_a_missing_config_file_is_a_command_error(tmp_path: Path) -> None:
    request = PlanRequest("feature/login", sha=SHA, config_file=tmp_path / "nope.yml")
    with pytest.raises(CommandError, match=r"cannot read .*nope\.yml"):
        run(request)


def plan_sub_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, **environ: str
) -> int:
    """``branchenv plan feature/x`` with the settings of BASE_ENVIRON plus ``environ``, no
    GitHub token, and ``config`` as the branchenv.yml; its exit code."""
    for key, value in {**BASE_ENVIRON, **environ}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BRANCHENV_GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("BRANCHENV_GITHUB_TOKEN_ARN", raising=False)
    path = write_config(tmp_path, config)
    parser = argparse.ArgumentParser()
    plan_command.register(parser.add_subparsers())
    args = parser.parse_args(
        ["plan", "feature/x", "--sha", SHA, "--repository", "acme/shop", "--config", str(path)]
    )
    code: int = args.func(args)
    return code


def test_plan_sub_command_reads_settings_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "service:\n  cpu: 1024\n  memory: 2048\n"
    assert plan_sub_command(tmp_path, monkeypatch, config, BRANCHENV_MAX_CPU="512") == 1
    assert "  - cpu-limit: service.cpu 1024 is above this installation's maximum of 512" in (
        capsys.readouterr().out
    )


def test_plan_sub_command_holds_the_file_to_branchenv_container_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "service:\n  container_port: 3000\n"
    environ = {"BRANCHENV_CONTAINER_PORTS": "8000-9000"}
    assert plan_sub_command(tmp_path, monkeypatch, config, **environ) == 1
    assert "  - container-port: service.container_port 3000 in branchenv.yml" in (
        capsys.readouterr().out
    )
