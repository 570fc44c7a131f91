"""``branchenv plan BRANCH``: print what converge would send to ECS, and the policy verdict.

Reads the repository's ``branchenv.yml`` from ``--config FILE`` or, when a GitHub token
is configured, from GitHub at the sha (or the branch head); renders the task definition
and the service exactly as converge would, and runs the policy checks on them. Exit 0
when the policy passes (or the branch gets no preview), 1 when it fails or the file is
invalid.

It must never change anything (no AWS write, no GitHub write) and never print a secret:
secrets appear only as the ARNs the file names.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from chalicelib.aws.errors import AwsError
from chalicelib.domain.names import EnvironmentNames, is_sha, names_for
from chalicelib.domain.settings import Settings
from chalicelib.engine.policy import OperatorPolicy, Violation, check
from chalicelib.engine.repoconfig import (
    FILE_NAME,
    ConfigError,
    RepoConfig,
    load_repo_config,
    repo_defaults,
)
from chalicelib.engine.taskdef import RenderContext, render_service, render_task_definition
from chalicelib.tools.cli import CommandError

PLACEHOLDER_SHA = "0" * 40
NOT_YET_CREATED = "(created by converge)"


class FileSource(Protocol):
    """Where the file is read from: chalicelib.github.gateway.GitHubGateway has this shape."""

    def file_contents(self, repository: str, path: str, ref: str) -> str | None: ...

    def branch_head(self, repository: str, branch: str) -> str | None: ...


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: one branch of one repository, at a sha, with an image."""

    branch: str
    repository: str | None = None
    sha: str | None = None
    config_file: Path | None = None
    image: str | None = None
    default_branch: str = "main"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="print the rendered task definition, service and policy verdict; changes nothing",
    )
    parser.add_argument("branch", metavar="BRANCH", help="branch name, e.g. feature/login")
    parser.add_argument("--sha", help="commit sha (default: the branch head on GitHub)")
    parser.add_argument(
        "--repository", help="owner/name (default: the only BRANCHENV_ALLOWED_REPOSITORIES)"
    )
    parser.add_argument(
        "--config", type=Path, help=f"a {FILE_NAME} to use instead of the one on GitHub"
    )
    parser.add_argument("--image", help="image URI (default: <ECR repository>:<sha>)")
    parser.add_argument(
        "--default-branch", default="main", help="the repository's default branch (main)"
    )
    parser.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    settings = Settings.from_environ(os.environ)
    request = PlanRequest(
        branch=args.branch,
        repository=args.repository,
        sha=args.sha,
        config_file=args.config,
        image=args.image,
        default_branch=args.default_branch,
    )
    source = None if args.config else github_source(settings, sys.stderr)
    return plan(request, settings=settings, source=source, out=sys.stdout, err=sys.stderr)


def plan(
    request: PlanRequest,
    *,
    settings: Settings,
    source: FileSource | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the plan for ``request``; the exit code is the verdict (0 pass, 1 fail)."""
    operator = OperatorPolicy.from_settings(settings)
    repository = repository_of(request, settings)
    sha = sha_of(request, repository, source, err)
    try:
        config = load_repo_config(
            read_config(request, repository, sha, source, err), defaults=repo_defaults(settings)
        )
    except ConfigError as exc:
        print(f"policy: failed\n  - {exc}", file=out)
        return 1
    names = names_for(settings.app_name, repository, request.branch, settings.preview_domain)
    if not config.branches.wants(request.branch, default_branch=request.default_branch):
        print(skipped_message(request, config), file=out)
        return 0
    image = request.image or f"{settings.ecr_repository}:{sha}"
    task_definition, service = render(settings, names, sha, image, config)
    print(json.dumps({"taskDefinition": task_definition, "service": service}, indent=2), file=out)
    violations = check(task_definition, service, config=config, operator=operator)
    print(verdict(violations), file=out)
    return 1 if violations else 0


def repository_of(request: PlanRequest, settings: Settings) -> str:
    if request.repository:
        return request.repository
    if len(settings.allowed_repositories) == 1:
        return next(iter(settings.allowed_repositories))
    raise CommandError(
        "pass --repository owner/name (it is part of several names and ${REPOSITORY})"
    )


def sha_of(request: PlanRequest, repository: str, source: FileSource | None, err: TextIO) -> str:
    if request.sha:
        if not is_sha(request.sha):
            raise CommandError(f"--sha must be a full 40-character commit id, got {request.sha!r}")
        return request.sha
    if source is not None and request.config_file is None:
        head = source.branch_head(repository, request.branch)
        if head is None:
            raise CommandError(f"branch {request.branch} of {repository} was not found on GitHub")
        return head
    print(f"note: no --sha given; rendering with {PLACEHOLDER_SHA}", file=err)
    return PLACEHOLDER_SHA


def read_config(
    request: PlanRequest, repository: str, sha: str, source: FileSource | None, err: TextIO
) -> str | None:
    """The file's text, or None when the repository has none (defaults apply)."""
    if request.config_file is not None:
        try:
            return request.config_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {request.config_file}: {exc.strerror}") from None
    if source is None:
        print(
            f"note: no --config and no GitHub token configured; planning as for a repository "
            f"without {FILE_NAME}",
            file=err,
        )
        return None
    text = source.file_contents(repository, FILE_NAME, sha)
    if text is None:
        print(f"note: {repository} has no {FILE_NAME} at {sha[:12]}; using the defaults", file=err)
    return text


def github_source(settings: Settings, err: TextIO) -> FileSource | None:
    """The GitHub gateway when GitHub is configured (a token, or a GitHub App)."""
    from chalicelib.aws.clients import ClientFactory
    from chalicelib.github.auth import github_token_source
    from chalicelib.github.gateway import GitHubError, GitHubGateway

    token = github_token_source(settings, ClientFactory(settings.region, settings.aws_endpoint_url))
    if token is None:
        return None
    return _GitHubFiles(GitHubGateway(token, settings.github_api_url), GitHubError)


class _GitHubFiles:
    """Turns GitHub failures into one-line command errors."""

    def __init__(self, gateway: FileSource, error_type: type[Exception]) -> None:
        self._gateway = gateway
        self._error_type = error_type

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        return self._call(lambda: self._gateway.file_contents(repository, path, ref))

    def branch_head(self, repository: str, branch: str) -> str | None:
        return self._call(lambda: self._gateway.branch_head(repository, branch))

    def _call(self, action: Callable[[], str | None]) -> str | None:
        try:
            return action()
        except (self._error_type, AwsError) as exc:  # AwsError: reading the token's secret
            raise CommandError(f"GitHub: {exc}; or pass --config FILE") from None


def render(
    settings: Settings, names: EnvironmentNames, sha: str, image: str, config: RepoConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two requests converge would send (ARNs it has not made yet are marked)."""
    ctx = RenderContext(settings=settings, names=names, sha=sha, image_uri=image, config=config)
    service = render_service(
        ctx,
        service_name=names.service(1),
        task_definition_arn=NOT_YET_CREATED,
        target_group_arn=NOT_YET_CREATED,
    )
    return render_task_definition(ctx), service


def skipped_message(request: PlanRequest, config: RepoConfig) -> str:
    branches = config.branches
    return (
        f"branch {request.branch} gets no preview: {FILE_NAME} branches include "
        f"{list(branches.include)}, exclude {list(branches.exclude)}, and the default branch "
        f"({request.default_branch}) only when named in include"
    )


def verdict(violations: list[Violation]) -> str:
    if not violations:
        return "policy: passed"
    return "\n".join(["policy: failed", *(f"  - {v}" for v in violations)])
