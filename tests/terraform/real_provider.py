"""terraform/ with the real hashicorp/aws provider, against a moto server on loopback.

:func:`provider_source` finds how the provider can be installed: the user's own CLI
configuration (``TF_CLI_CONFIG_FILE``, which terraform reads by itself, when that file
exists), else a local
filesystem mirror (looked for first in the folders README names and Terraform's implied
mirror folders, then, only where none holds it, with ``find / -name
'terraform-provider-aws_*' -path '*registry.terraform.io*'``, which takes seconds on a full
disk; pointed at by a CLI configuration written here), else nothing, and the tests skip
saying so. No test here reaches a network but loopback and, where the
user's configuration says so, the provider registry.

:class:`MotoServer` runs ``python -m moto.server`` in a child process on a free 127.0.0.1
port, so its settings are its own environment: ACM validates certificates at once
(``MOTO_ACM_VALIDATION_WAIT=0``; moto's default keeps them PENDING_VALIDATION for 60 s and
``aws_acm_certificate_validation`` waits for ISSUED). :class:`Module` is a copy of
terraform/ with the Chalice package generated as ``branchenv deploy`` generates it and a
provider whose every endpoint is that server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3

from chalicelib.tools.deploy import package_app, stage_project, write_override
from tests.terraform.hcl import ROOT

MIRROR_NAME = "terraform-provider-aws_*"
MIRROR_PATH = "*registry.terraform.io*"
# Every service terraform/ and the Chalice package call (provider "endpoints" keys).
SERVICES = (
    "acm",
    "apigateway",
    "cloudwatchlogs",
    "codebuild",
    "dynamodb",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "events",
    "iam",
    "lambda",
    "route53",
    "secretsmanager",
    "sqs",
    "sts",
)
EXAMPLE_VARS = ROOT / "terraform" / "examples" / "complete" / "example.tfvars"
TIMEOUT_SECONDS = 600
REGION = "us-east-1"
# Module-scoped fixtures run before tests/conftest.py's credentials fixture.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# Where a mirror usually is: README's example, then Terraform's implied local mirror
# directories on Linux (CLI configuration documentation, "Implied Local Mirror Directories").
MIRROR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)


def find_mirror(candidates: Sequence[Path] = MIRROR_CANDIDATES) -> Path | None:
    """Root of a filesystem mirror holding hashicorp/aws (the folder that holds
    ``registry.terraform.io``), or None: the first of ``candidates`` that holds the
    provider binary, else what ``find /`` finds."""
    for root in candidates:
        if any((root / "registry.terraform.io" / "hashicorp" / "aws").glob(f"*/*/{MIRROR_NAME}")):
            return root
    try:
        found = subprocess.run(
            ["find", "/", "-name", MIRROR_NAME, "-path", MIRROR_PATH],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    for binary in found:
        parts = Path(binary).parts
        if "registry.terraform.io" in parts:
            return Path(*parts[: parts.index("registry.terraform.io")])
    return None


def mirror_config(mirror: Path) -> str:
    """A CLI configuration that installs providers from ``mirror`` only."""
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/*/*"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n'
    )


def provider_source(scratch: Path) -> tuple[Path | None, str]:
    """(CLI configuration file to use, "") or (None, why the provider is unavailable)."""
    if shutil.which("terraform") is None:
        return None, "terraform is not on PATH (see README, 'Terraform in the tests')"
    configured = os.environ.get("TF_CLI_CONFIG_FILE")
    if configured and Path(configured).is_file():
        return Path(configured), ""
    mirror = find_mirror()
    if mirror is None:
        return None, (
            "no hashicorp/aws provider: TF_CLI_CONFIG_FILE is unset and no filesystem mirror "
            f"({MIRROR_NAME} under registry.terraform.io) was found"
        )
    config = scratch / "terraform.rc"
    config.write_text(mirror_config(mirror))
    return config, ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1 in a child process, started at once;
    :meth:`wait_ready` waits until it answers (the caller does other work meanwhile)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "MOTO_ACM_VALIDATION_WAIT": "0"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


class Module:
    """A copy of terraform/ in ``directory`` with the generated package and a provider
    pointed at ``endpoint``; every command reads ``var_files``."""

    def __init__(self, directory: Path, cli_config: Path, endpoint: str) -> None:
        self.directory = directory
        shutil.copytree(ROOT / "terraform", directory, ignore=shutil.ignore_patterns(".terraform*"))
        staging = stage_project(ROOT, directory.parent / "stage", requirements=[])
        package_app(staging, directory / "chalice", "us-east-1")
        write_override(directory / "chalice")
        provider = {
            "region": "us-east-1",
            "access_key": "testing",
            "secret_key": "testing",
            "skip_credentials_validation": True,
            "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            "endpoints": [dict.fromkeys(SERVICES, endpoint)],
        }
        (directory / "moto_provider.tf.json").write_text(
            json.dumps({"provider": {"aws": provider}}, indent=2)
        )
        self.environ = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
        }
        self.var_files: list[Path] = [EXAMPLE_VARS]

    def add_variables(self, name: str, values: dict[str, Any]) -> None:
        path = self.directory / name
        path.write_text(json.dumps(values))
        self.var_files.append(path)

    def command(self, *args: str, var_files: bool = False) -> list[str]:
        command = ["terraform", *args, "-no-color"]
        if var_files:
            command += [f"-var-file={path}" for path in self.var_files]
        return command

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``terraform <args>`` in the background (one that reads no state, such as
        ``validate``, beside a running apply); :func:`finished` collects it."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.directory,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, var_files: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, var_files=var_files),
            cwd=self.directory,
            env=self.environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )

    def planned(self, plan_file: str) -> dict[str, dict[str, Any]]:
        """The managed resources the saved plan creates: address → planned values (those
        known before apply)."""
        shown = self.run("show", "-json", plan_file)
        assert shown.returncode == 0, shown.stderr
        changes = json.loads(shown.stdout)["resource_changes"]
        return {c["address"]: c["change"]["after"] for c in changes if c["mode"] == "managed"}

    def state(self) -> list[str]:
        """Managed resources in the state (data sources left out)."""
        listed = self.run("state", "list")
        found = listed.stdout.split() if listed.returncode == 0 else []
        return [a for a in found if not (a.startswith("data.") or ".data." in a)]

    def outputs(self) -> dict[str, Any]:
        read = self.run("output", "-json")
        assert read.returncode == 0, read.stderr
        return {name: value["value"] for name, value in json.loads(read.stdout).items()}


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """What a command from :meth:`Module.start` printed, once it has ended."""
    stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def targets(addresses: Sequence[str], unplayable: Sequence[str]) -> Iterator[str]:
    """``-target`` arguments for every address but those ``unplayable`` names."""
    for address in addresses:
        if not any(address.endswith(name) for name in unplayable):
            yield f"-target={address}"


def network_in(endpoint: str) -> dict[str, Any]:
    """What the example variables name and an account already has: a VPC with subnets,
    and the hosted zone, made in moto."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint, **FAKE_CREDENTIALS)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{'ab'[i % 2]}"
        )["Subnet"]["SubnetId"]
        for i in range(4)
    ]
    route53 = boto3.client("route53", region_name=REGION, endpoint_url=endpoint, **FAKE_CREDENTIALS)
    zone = route53.create_hosted_zone(Name="preview.example.com", CallerReference="terraform")
    return {
        "vpc_id": vpc,
        "public_subnet_ids": subnets[:2],
        "private_subnet_ids": subnets[2:],
        "hosted_zone_id": zone["HostedZone"]["Id"].rsplit("/", 1)[-1],
    }
