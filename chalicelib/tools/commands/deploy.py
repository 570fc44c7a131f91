"""``branchenv deploy`` and ``branchenv destroy-all``: one command to and from a real account.

``deploy`` packages the app with Chalice, runs terraform init/plan on terraform/, shows the
plan, asks before applying (``--yes`` for CI) and prints the webhook URL and the secret
ARNs for GitHub's webhook settings. ``destroy-all`` refuses while any environment is live,
then destroys the whole installation. The work is in :mod:`chalicelib.tools.deploy`; this module
checks the tools first (terraform on PATH, AWS credentials, a region) so a missing one is
one clear line, not a traceback. It never prints a secret value, only ARNs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.tools.cli import CommandError
from chalicelib.tools.deploy import Deployer, PythonTerraform, Terraform

DEFAULT_VAR_FILE = Path("terraform") / "terraform.tfvars"


def _has_credentials() -> bool:
    """Whether botocore finds credentials (environment, profile, SSO, instance role).
    Resolving the chain makes no AWS API call."""
    import botocore.session

    return botocore.session.Session().get_credentials() is not None


def _configured_region() -> str | None:
    """The region terraform's AWS provider will use: AWS_REGION first (botocore ignores
    it), then AWS_DEFAULT_REGION or the profile's region."""
    import botocore.session

    region = os.environ.get("AWS_REGION") or botocore.session.Session().get_config_variable(
        "region"
    )
    return str(region) if region else None


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        raise CommandError(f"{question} needs an answer: run in a terminal, or pass --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _live_environments(outputs: Mapping[str, Any]) -> list[str]:
    """Slugs of the live environments recorded in the installation's table."""
    table, region = outputs.get("table_name"), outputs.get("region")
    if not table or not region:
        return []  # nothing was ever applied: no table, no environment
    from chalicelib.aws.clients import ClientFactory
    from chalicelib.aws.dynamodb import DynamoEnvironmentStore

    store = DynamoEnvironmentStore(ClientFactory(str(region)).client("dynamodb"), str(table))
    return [env.slug for env in store.live()]


@dataclass
class Tools:
    """Everything outside Python the commands use; tests pass fakes."""

    which: Callable[[str], str | None] = shutil.which
    has_credentials: Callable[[], bool] = _has_credentials
    region: Callable[[], str | None] = _configured_region
    terraform: Callable[[Path, str], Terraform] = PythonTerraform
    confirm: Callable[[str], bool] = _ask
    echo: Callable[[str], None] = print
    live_environments: Callable[[Mapping[str, Any]], Sequence[str]] = _live_environments
    run: Any = field(default=None)  # the chalice runner; None for subprocess.run


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="deploy branchenv to the AWS account of your credentials (terraform/)",
        description="Package the app with Chalice, show the terraform plan, apply it after "
        "you confirm, and print the webhook URL and secret ARNs for GitHub.",
    )
    _common_options(deploy)
    deploy.set_defaults(func=lambda args: run_deploy(args, Tools()))
    destroy = subparsers.add_parser(
        "destroy-all",
        help="remove the whole installation once no environment is live",
        description="Refuse while any environment is live; otherwise show the destroy plan "
        "and destroy every resource terraform/ created after you confirm.",
    )
    _common_options(destroy)
    destroy.set_defaults(func=lambda args: run_destroy_all(args, Tools()))


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--var-file",
        type=Path,
        default=DEFAULT_VAR_FILE,
        help=f"terraform variables of the installation (default: {DEFAULT_VAR_FILE})",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path("."),
        help="the branchenv checkout (default: the current folder)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before changing anything")


def run_deploy(args: argparse.Namespace, tools: Tools) -> int:
    deployer = _deployer(args, tools)
    outputs = deployer.deploy(assume_yes=args.yes)
    if outputs is None:
        return 1
    for line in summary(outputs):
        tools.echo(line)
    return 0


def run_destroy_all(args: argparse.Namespace, tools: Tools) -> int:
    deployer = _deployer(args, tools)
    if not deployer.destroy(assume_yes=args.yes, live_environments=tools.live_environments):
        return 1
    tools.echo("The installation is gone. The secrets stay recoverable for 7 days.")
    return 0


def _deployer(args: argparse.Namespace, tools: Tools) -> Deployer:
    terraform_bin = tools.which("terraform")
    if terraform_bin is None:
        raise CommandError(
            "terraform is not on PATH: install Terraform 1.5 or later "
            "(https://developer.hashicorp.com/terraform/install) and run again"
        )
    if not tools.has_credentials():
        raise CommandError(
            "no AWS credentials found: set AWS_PROFILE (after `aws sso login` or "
            "`aws configure`) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and run again"
        )
    region = tools.region()
    if region is None:
        raise CommandError(
            "no AWS region: set AWS_REGION, or a region in your AWS profile, and run again"
        )
    project = args.project_dir
    var_file = args.var_file if args.var_file.is_absolute() else project / args.var_file
    extra = {"run": tools.run} if tools.run is not None else {}
    return Deployer(
        project=project,
        terraform=tools.terraform(project / "terraform", terraform_bin),
        var_file=var_file,
        region=region,
        confirm=tools.confirm,
        echo=tools.echo,
        **extra,
    )


def summary(outputs: Mapping[str, Any]) -> list[str]:
    """What to put into GitHub's webhook settings, and the secrets still to fill in."""
    return [
        "",
        "Deployed. In GitHub: Settings → Webhooks → Add webhook",
        f"  Payload URL:   {outputs.get('webhook_url', '?')}",
        "  Content type:  application/json",
        "  Secret:        the value you put into the secret below",
        "  Events:        Branch or tag creation, Branch or tag deletion, Pushes",
        "",
        f"Webhook secret ARN: {outputs.get('webhook_secret_arn', '?')}",
        f"GitHub token ARN:   {outputs.get('github_token_arn', '?')}",
        f"Slack token ARN:    {outputs.get('slack_token_arn', '?')}",
        f"Dashboard key ARN:  {outputs.get('dashboard_key_arn', '?')}",
        "Set each with: aws secretsmanager put-secret-value --secret-id <ARN> --secret-string ...",
    ]
