"""Deploying branchenv to a real AWS account: the Chalice package, then Terraform.

``branchenv deploy`` (chalicelib/commands/deploy.py) runs, in order:

1. :func:`stage_project` copies the app into a build folder with the Lambda's
   requirements, and :func:`package_app` runs ``chalice package --pkg-format terraform``
   there, writing ``chalice.tf.json`` and ``deployment.zip`` into ``terraform/chalice/``;
2. :func:`write_override` writes ``terraform/chalice/chalice_override.tf.json``
   (:func:`chalice_override`): every generated function gets the installation's
   environment, role, timeout and log group; the SQS event source points at the real work
   queue, with a maximum concurrency and partial batch responses; with ``dashboard_auth =
   "iam"`` every API method but the GitHub webhook requires AWS_IAM; AWS event rules are
   narrowed to this installation; Chalice's old Terraform and provider pins are replaced;
3. :class:`Deployer` runs ``terraform init``, ``plan`` (shown, then confirmed) and
   ``apply`` through a :class:`Terraform` runner, and reads the outputs.

Everything outside (the terraform binary, credentials, the question to the user, the
list of live environments) is passed in, so tests use fakes. This module never prints a
secret: it prints secret ARNs, never values, and it never calls an AWS API itself.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chalicelib.cli import CommandError

STAGE = "prod"
PACKAGE_FOLDER = "chalice"
GENERATED_TEMPLATE = "chalice.tf.json"
OVERRIDE_FILE = "chalice_override.tf.json"
PLAN_FILE = "branchenv.tfplan"
STAGING_FOLDER = Path(".deploy") / "app"
# app.py's placeholder: Chalice needs a queue name when it packages the app.
PLACEHOLDER_QUEUE = "branchenv-work.fifo"
API_HANDLER = "api_handler"

# Chalice's template pins Terraform < 1.4 and the AWS provider < 5; the override replaces
# both, as terraform/versions.tf does: 5.27 added logging_config, and provider 6 removed
# aws_api_gateway_deployment's stage_name, which the package uses.
TERRAFORM_PINS: dict[str, Any] = {
    "required_version": ">= 1.5",
    "required_providers": {
        "aws": {"source": "hashicorp/aws", "version": ">= 5.27, < 6.0"},
        "null": {"source": "hashicorp/null", "version": ">= 3.0, < 4.0"},
    },
}

# The worker's event source: at most var.worker_max_concurrency invocations at once (Lambda
# API reference, "ScalingConfig": 2 to 1000), and partial batch responses, so the worker
# reports a failed record itself and sets its own visibility on a wait (Lambda developer
# guide, "Handling errors for an SQS event source in Lambda", ReportBatchItemFailures).
WORKER_EVENT_SOURCE: dict[str, Any] = {
    "event_source_arn": "${var.queue_arn}",
    "function_response_types": ["ReportBatchItemFailures"],
    "scaling_config": {"maximum_concurrency": "${var.worker_max_concurrency}"},
}

# The dashboard's "iam" mode. Chalice puts the API's OpenAPI 2 body in this local (also the
# md5 that redeploys the stage). IAM authorization is a security scheme of type apiKey with
# x-amazon-apigateway-authtype awsSigv4 (API Gateway developer guide,
# "x-amazon-apigateway-authtype property"; what Chalice's IAMAuthorizer writes), named by
# each method's `security`. GitHub cannot sign with SigV4: the webhook stays open and
# proves itself with its HMAC signature.
SWAGGER_LOCAL = "chalice_api_swagger"
SIGV4 = "sigv4"
SIGV4_SCHEME = {
    "in": "header",
    "type": "apiKey",
    "name": "Authorization",
    "x-amazon-apigateway-authtype": "awsSigv4",
}
OPEN_METHODS = frozenset({("/github/webhook", "post")})
IAM_MODE = 'var.dashboard_auth == "iam"'

# Provided by the Lambda runtime (boto3, botocore) or used only on the operator's machine.
NOT_FOR_LAMBDA = frozenset({"chalice", "boto3", "botocore", "python-terraform"})
# What the Lambda never imports: the embedded local stack.
NOT_PACKAGED = ("local", "__pycache__")

# Narrowing of the rules Chalice generates for on_cw_event handlers, by event source:
# the key added to the pattern and its value (a variable of terraform/chalice).
EVENT_FILTERS: dict[str, tuple[str, Any]] = {
    "aws.codebuild": ("detail", {"project-name": ["${var.codebuild_project}"]}),
    "aws.ecr": ("detail", {"repository-name": ["${var.ecr_repository}"]}),
    "aws.ecs": (
        "resources",
        [
            "${var.cluster_arn}",
            {"prefix": "${var.ecs_service_arn_prefix}"},
            {"prefix": "${var.ecs_task_arn_prefix}"},
        ],
    ),
}


class DeployError(CommandError):
    """The package or the Terraform run failed; the message says what to do next."""


# --- 1. the Chalice package ----------------------------------------------------------------


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
        raise DeployError(f"chalice package failed: {_last_line(done.stderr or done.stdout)}")
    template: dict[str, Any] = json.loads((out / GENERATED_TEMPLATE).read_text())
    return template


# --- 2. the override ----------------------------------------------------------------------------


def chalice_override(template: Mapping[str, Any]) -> dict[str, Any]:
    """The override file's content for a generated Chalice template (see module doc)."""
    resources = template.get("resource", {})
    override: dict[str, Any] = {
        "terraform": TERRAFORM_PINS,
        "resource": {
            "aws_lambda_function": {
                name: _function_override(name, function)
                for name, function in resources.get("aws_lambda_function", {}).items()
            },
        },
    }
    mappings = _sqs_mappings(resources.get("aws_lambda_event_source_mapping", {}))
    if mappings:
        override["resource"]["aws_lambda_event_source_mapping"] = mappings
    apis = resources.get("aws_api_gateway_rest_api", {})
    if apis:
        override["resource"]["aws_api_gateway_rest_api"] = {
            name: {"name": "${var.app_name}"} for name in apis
        }
    swagger = template.get("locals", {}).get(SWAGGER_LOCAL)
    if swagger is not None:
        override["locals"] = {SWAGGER_LOCAL: dashboard_auth_swagger(swagger)}
    rules = _event_rules(resources.get("aws_cloudwatch_event_rule", {}))
    if rules:
        override["resource"]["aws_cloudwatch_event_rule"] = rules
    return override


def _function_override(name: str, function: Mapping[str, Any]) -> dict[str, Any]:
    timeout = "api_timeout_seconds" if name == API_HANDLER else "worker_timeout_seconds"
    handler = "api" if name == API_HANDLER else name.replace("_", "-")
    chalice_tags = json.dumps(function.get("tags", {}))
    return {
        "function_name": f"${{var.app_name}}-{handler}",
        "role": "${var.role_arn}",
        "timeout": f"${{var.{timeout}}}",
        "memory_size": "${var.memory_mb}",
        "environment": {"variables": "${var.environment}"},
        "logging_config": {"log_format": "Text", "log_group": "${var.log_group_name}"},
        "tags": f"${{merge(var.tags, {chalice_tags})}}",
    }


def _sqs_mappings(mappings: Mapping[str, Any]) -> dict[str, Any]:
    result = {}
    for name, mapping in mappings.items():
        source = str(mapping.get("event_source_arn", ""))
        if ":sqs:" not in source:
            continue
        if not source.endswith(":" + PLACEHOLDER_QUEUE):
            raise DeployError(
                f"{name} reads {source.rsplit(':', 1)[-1]}, but the only queue terraform/ "
                f"creates is the work queue: declare SQS handlers with queue={PLACEHOLDER_QUEUE!r}"
            )
        result[name] = copy.deepcopy(WORKER_EVENT_SOURCE)
    return result


def dashboard_auth_swagger(swagger_text: str) -> str:
    """A Terraform template of the API body: ``swagger_text`` as Chalice wrote it, or, when
    the installation's dashboard_auth is "iam", the same API with AWS_IAM on every method
    but :data:`OPEN_METHODS`. A Terraform override may replace a local, never add one, so
    both bodies sit in one ``%{ if }`` template."""
    swagger = json.loads(swagger_text)
    paths: dict[str, dict[str, Any]] = swagger.get("paths", {})
    missing = [f"{m.upper()} {p}" for p, m in OPEN_METHODS if m not in paths.get(p, {})]
    if missing:
        raise DeployError(
            f"the API has no {', '.join(sorted(missing))}: update OPEN_METHODS in "
            'chalicelib/deploy.py, or dashboard_auth = "iam" would lock GitHub out'
        )
    for path, methods in paths.items():
        for method, operation in methods.items():
            if isinstance(operation, dict) and (path, method) not in OPEN_METHODS:
                operation["security"] = [{SIGV4: []}]
    swagger.setdefault("securityDefinitions", {})[SIGV4] = SIGV4_SCHEME
    return f"%{{ if {IAM_MODE} }}{json.dumps(swagger)}%{{ else }}{swagger_text}%{{ endif }}"


def _event_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """Rule names prefixed with the installation (two installations may share an account),
    and AWS event patterns narrowed to this installation's resources."""
    result = {}
    for name, rule in rules.items():
        handler = name.removesuffix("-event").replace("_", "-")
        override: dict[str, Any] = {"name": f"${{var.app_name}}-{handler}"}
        if "event_pattern" in rule:  # a schedule has none
            pattern = json.loads(rule["event_pattern"])
            narrowed = narrow_event_pattern(pattern)
            if narrowed != pattern:
                override["event_pattern"] = json.dumps(narrowed, sort_keys=True)
        result[name] = override
    return result


def narrow_event_pattern(pattern: Mapping[str, Any]) -> dict[str, Any]:
    """``pattern`` restricted to this installation's build project, repository or cluster,
    when it is for exactly one of those AWS sources and does not already filter on it."""
    narrowed = dict(pattern)
    sources = pattern.get("source", [])
    if len(sources) != 1 or sources[0] not in EVENT_FILTERS:
        return narrowed
    key, value = EVENT_FILTERS[sources[0]]
    if key == "detail":
        detail = dict(pattern.get("detail", {}))
        for field_name, allowed in value.items():
            detail.setdefault(field_name, allowed)
        narrowed["detail"] = detail
    else:
        narrowed.setdefault(key, value)
    return narrowed


def write_override(package_dir: Path) -> dict[str, Any]:
    """Write the override file next to the generated template; return its content."""
    template = json.loads((package_dir / GENERATED_TEMPLATE).read_text())
    override = chalice_override(template)
    (package_dir / OVERRIDE_FILE).write_text(json.dumps(override, indent=2, sort_keys=True) + "\n")
    return override


# --- 3. Terraform ---------------------------------------------------------------------------------


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
            raise DeployError(f"terraform plan failed: {_last_line(err or out)}")
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
            raise DeployError(f"terraform {command} failed: {_last_line(err or out)}")


def _flag() -> Any:
    from python_terraform import IsFlagged

    return IsFlagged


def _last_line(text: str | None) -> str:
    lines = [line.strip(" │╷╵") for line in (text or "").splitlines()]
    useful = [line for line in lines if line.strip()]
    errors = [line for line in useful if line.startswith("Error")]
    return (errors or useful or ["no output"])[-1].strip()


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
