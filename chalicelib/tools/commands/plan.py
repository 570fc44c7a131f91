"""``branchenv plan BRANCH``: print what converge would send to ECS, and the policy verdict.

Reads the repository's ``branchenv.yml`` from ``--config FILE`` or, when a GitHub token
is configured, from GitHub at the sha (or the branch head), and prints what converge's own
target builder (:meth:`chalicelib.engine.converge.targets.TargetBuilder.rendering`) would
deploy: the branch rule's verdict, the task definition and the service, and the policy
checks on them. Exit 0 when the policy passes (or the branch gets no preview), 1 when it
fails or the file is invalid.

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
from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore
from chalicelib.domain.names import is_sha, names_for
from chalicelib.domain.settings import Settings
from chalicelib.engine.converge.repo_configs import RepoConfigSource
from chalicelib.engine.converge.targets import TargetBuilder
from chalicelib.engine.policy import OperatorPolicy, Violation
from chalicelib.engine.repoconfig import FILE_NAME, repo_defaults
from chalicelib.tools.cli import CommandError

PLACEHOLDER_SHA = "0" * 40


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
    repository = repository_of(request, settings)
    sha = sha_of(request, repository, source, err)
    text = read_config(request, repository, sha, source, err)
    builder = TargetBuilder(
        settings=settings,
        store=InMemoryEnvironmentStore(),  # placement is not printed; nothing is claimed
        repository_uri=lambda: settings.ecr_repository,
        configs=RepoConfigSource(_TheFile(text), repo_defaults(settings)),
        operator=OperatorPolicy.from_settings(settings),
    )
    names = names_for(settings.app_name, repository, request.branch, settings.preview_domain)
    env = Environment(
        slug=names.slug, repository=repository, branch=request.branch, desired_sha=sha
    )
    rendering = builder.rendering(
        env, names, default_branch=request.default_branch, image_uri=request.image
    )
    if rendering.config_error is not None:
        print(f"policy: failed\n  - {rendering.config_error}", file=out)
        return 1
    if not rendering.verdict.wanted:
        print(f"branch {request.branch} gets no preview: {rendering.verdict.why}", file=out)
        return 0
    document = {"taskDefinition": rendering.task_definition, "service": rendering.service}
    print(json.dumps(document, indent=2), file=out)
    print(verdict(list(rendering.violations)), file=out)
    return 1 if rendering.violations else 0


class _TheFile:
    """The one branchenv.yml text plan has read (None: the repository has none), as the
    target builder's file source."""

    def __init__(self, text: str | None) -> None:
        self._text = text

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        return self._text


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
    from chalicelib.github.connect import gateway_from_settings
    from chalicelib.github.gateway import GitHubError

    clients = ClientFactory(settings.region, settings.aws_endpoint_url)
    gateway = gateway_from_settings(settings, clients)
    return _GitHubFiles(gateway, GitHubError) if gateway is not None else None


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


def verdict(violations: list[Violation]) -> str:
    if not violations:
        return "policy: passed"
    return "\n".join(["policy: failed", *(f"  - {v}" for v in violations)])
