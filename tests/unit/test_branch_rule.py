"""The one rule of which branches get a preview: the intake, converge's target builder and
``branchenv plan`` give the same answer, and the reason says where the rule came from."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore
from chalicelib.domain.names import names_for
from chalicelib.domain.settings import Listener
from chalicelib.engine.converge.repo_configs import RepoConfigSource
from chalicelib.engine.converge.targets import TargetBuilder
from chalicelib.engine.policy import OperatorPolicy
from chalicelib.engine.repoconfig import BranchFilter, RepoDefaults, load_repo_config
from chalicelib.handlers.webhooks import Ignored, parse
from chalicelib.tools.commands.plan import PlanRequest, plan
from tests.conftest import load_event
from tests.unit.test_repoconfig import minimal_settings

SHA = "e" * 40
REPOSITORY = "acme/shop"
SETTINGS = minimal_settings(
    allowed_repositories=frozenset({REPOSITORY}),
    listeners=(Listener("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/1/2", "d", "z"),),
)
INCLUDES_MAIN = "branches:\n  include: [main, 'feature/**']\n"


class OneFile:
    """branchenv.yml as GitHub would serve it at any ref (None: the repository has none)."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        return self.text


def builder(text: str | None) -> TargetBuilder:
    return TargetBuilder(
        settings=SETTINGS,
        store=InMemoryEnvironmentStore(),
        repository_uri=lambda: "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo",
        configs=RepoConfigSource(OneFile(text), RepoDefaults()),
        operator=OperatorPolicy.from_settings(SETTINGS),
    )


def converge_excluded(branch: str, text: str | None) -> str | None:
    """What converge's target says of ``branch`` (None: it gets a preview)."""
    names = names_for("demo", REPOSITORY, branch, SETTINGS.preview_domain)
    env = Environment(slug=names.slug, repository=REPOSITORY, branch=branch, desired_sha=SHA)
    return builder(text).target(env, names).excluded


def intake_push(branch: str, default_branch: str) -> Any:
    payload = load_event("github/push.webhooks-js.branch-update.payload")
    payload["ref"] = f"refs/heads/{branch}"
    payload["repository"]["default_branch"] = default_branch
    return parse("push", payload, "d-1")


def plan_output(branch: str, tmp_path: Path, text: str | None, **request: Any) -> str:
    config = None
    if text is not None:
        config = tmp_path / "branchenv.yml"
        config.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    chosen = PlanRequest(branch, sha=SHA, config_file=config, **request)
    plan(chosen, settings=SETTINGS, source=None, out=out, err=err)
    return out.getvalue()


def test_an_include_naming_the_default_branch_admits_it_nowhere(tmp_path: Path) -> None:
    # The intake drops the default branch before any branchenv.yml is read; the filter and
    # plan used to say an exact include entry admits it, which never came true.
    outcome = intake_push("main", default_branch="main")
    assert isinstance(outcome, Ignored)
    branches = load_repo_config(INCLUDES_MAIN, defaults=RepoDefaults()).branches
    assert not branches.wants("main", default_branch="main")
    out = plan_output("main", tmp_path, INCLUDES_MAIN, default_branch="main")
    assert out.startswith("branch main gets no preview: it is the default branch (production)")
    assert outcome.reason == branches.verdict("main", default_branch="main").reason


def test_the_intake_names_the_rule_for_the_default_branch() -> None:
    outcome = intake_push("master", default_branch="master")
    assert isinstance(outcome, Ignored)
    assert outcome.reason == (
        "branch 'master' gets no preview: it is the default branch (production), which by "
        "branchenv's built-in rule never gets one, whatever branchenv.yml includes"
    )


def test_the_intake_leaves_every_other_branch_to_converge() -> None:
    assert not isinstance(intake_push("dependabot/pip/x", default_branch="main"), Ignored)


def test_the_built_in_exclude_is_named_as_such_by_converge_and_plan(tmp_path: Path) -> None:
    branch = "dependabot/npm_and_yarn/lodash-4.17.21"
    why = (
        "'dependabot/**' of branchenv's built-in default branches.exclude "
        "(branchenv.yml does not set it) excludes it"
    )
    assert converge_excluded(branch, None) == f"branch {branch!r} gets no preview: {why}"
    assert plan_output(branch, tmp_path, None) == f"branch {branch} gets no preview: {why}\n"


def test_a_file_line_is_named_by_converge_and_plan(tmp_path: Path) -> None:
    text = "service:\n  cpu: 256\nbranches:\n  include:\n    - 'feature/**'\n"
    why = "it matches no pattern of branchenv.yml line 4: branches.include ['feature/**']"
    assert converge_excluded("fix/typo", text) == f"branch 'fix/typo' gets no preview: {why}"
    assert plan_output("fix/typo", tmp_path, text) == f"branch fix/typo gets no preview: {why}\n"


def test_a_file_that_sets_exclude_replaces_the_built_in_default() -> None:
    assert converge_excluded("dependabot/pip/x", "branches:\n  exclude: ['wip/**']\n") is None
    assert converge_excluded("wip/x", "branches:\n  exclude: ['wip/**']\n") == (
        "branch 'wip/x' gets no preview: 'wip/**' of branchenv.yml line 2: branches.exclude "
        "excludes it"
    )


def test_a_wanted_branch_says_which_pattern_admits_it() -> None:
    verdict = BranchFilter().verdict("feature/login", default_branch="main")
    assert verdict.wanted
    assert verdict.reason == (
        "branch 'feature/login' gets a preview: it matches '**' of branchenv's built-in "
        "default branches.include (branchenv.yml does not set it)"
    )


def test_the_default_branch_given_to_the_target_builder_gets_no_preview() -> None:
    names = names_for("demo", REPOSITORY, "main", SETTINGS.preview_domain)
    env = Environment(slug=names.slug, repository=REPOSITORY, branch="main", desired_sha=SHA)
    rendering = builder(INCLUDES_MAIN).rendering(env, names, default_branch="main")
    assert not rendering.verdict.wanted


@pytest.mark.parametrize("module", ["chalicelib.handlers.webhooks", "chalicelib.engine.repoconfig"])
def test_the_rule_imports_no_yaml(module: str) -> None:
    code = f"import sys, {module}; print('yaml' in sys.modules)"
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert answer.stdout.strip() == "False", answer.stderr
