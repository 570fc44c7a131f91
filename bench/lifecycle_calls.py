"""Prints the AWS calls each stage of a branch's life makes, per operation (moto).

``--image-source build`` (the default, as issue 13 counts) or ``ci``. Counted are the
calls branchenv's handlers make (webhook intake, worker, AWS event handlers: a call with a
frame of chalicelib/handlers/ on its stack), not those of the stand-ins (CodeBuild pushing
the image, ECS registering a healthy target, Lambda's SQS event source receiving and
deleting the messages it hands the worker) nor the test harness's own reads. The harness
hands each webhook's message to the worker directly, so the intake's SendMessage is not
among them.

``--local-stack`` counts black-box instead, every request the local stack's moto server
receives (bench/lifecycle_calls_local.py, ``build`` mode only).

    .venv/bin/python bench/lifecycle_calls.py [--image-source build|ci] [--local-stack]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.setdefault(key, "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from moto import mock_aws  # noqa: E402

from chalicelib.aws.clients import ClientFactory  # noqa: E402
from chalicelib.local.bootstrap import create_base_infrastructure  # noqa: E402
from tests.conftest import load_event, settings_for  # noqa: E402
from tests.integration.harness import World, sha_of  # noqa: E402

SERVICES = ("dynamodb", "ecs", "elbv2", "route53", "ecr", "sqs", "codebuild", "events")
HANDLERS = str(ROOT / "chalicelib" / "handlers")


def _in_a_handler() -> bool:
    """Whether branchenv's own code (one of its handlers) is making the call."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(HANDLERS):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class CallCounter:
    def __init__(self, clients: ClientFactory) -> None:
        self.calls: Counter[str] = Counter()
        for service in SERVICES:
            client = clients.client(service)
            prefix = client.meta.service_model.service_name
            client.meta.events.register(
                "before-call", lambda model, prefix=prefix, **_: self._count(prefix, model)
            )

    def _count(self, prefix: str, model: Any) -> None:
        if _in_a_handler():
            self.calls[f"{prefix}:{model.name}"] += 1

    def measure(self, label: str, action: Callable[[], None]) -> int:
        self.calls.clear()
        action()
        return print_stage(label, self.calls)


def print_stage(label: str, calls: Counter[str]) -> int:
    """One line of the table, e.g. ``push 1   5 calls: codebuild:StartBuild 1, ...``;
    the stage's total."""
    total = sum(calls.values())
    detail = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
    print(f"{label:<28} {total:>3} calls: {detail}")
    return total


def build_succeeded(world: World, branch: str, sha: str) -> None:
    """CodeBuild pushed the image (what buildspec.yml does) and EventBridge says so."""
    world.push_image(sha)
    event: dict[str, Any] = load_event("aws/codebuild.build-succeeded")
    detail = event["detail"]
    detail["project-name"] = world.settings.codebuild_project
    info = detail["additional-information"]
    info["source-version"] = sha
    for variable in info["environment"]["environment-variables"]:
        if variable["name"] == "BRANCHENV_ENV":
            variable["value"] = world.names(branch).slug
    world.aws_event(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-source", choices=("build", "ci"), default="build")
    parser.add_argument(
        "--local-stack",
        action="store_true",
        help="count at the local stack's moto server instead (build mode)",
    )
    args = parser.parse_args()
    if args.local_stack:
        if args.image_source != "build":
            parser.error("--local-stack counts build mode only")
        import lifecycle_calls_local

        lifecycle_calls_local.main([])
        return
    mode = args.image_source
    with mock_aws():
        clients = ClientFactory("us-east-1")
        infra = create_base_infrastructure(
            clients, app_name="bench", preview_domain="preview.example.com", region="us-east-1"
        )
        world = World(settings_for(infra, image_source=mode), clients)
        counter = CallCounter(clients)
        branch = "feature/bench"
        world.push_image(sha_of(9))
        world.deliver(world.push("warm-up", sha_of(9)))  # caches the ECR repository URI
        print(f"AWS calls per stage, image source {mode!r} (the stand-ins' calls not counted):")
        life = counter.measure("create event", lambda: world.deliver(world.create(branch)))
        for n, sha in enumerate((sha_of(1), sha_of(2)), start=1):
            if mode == "ci":
                world.push_image(sha)
            push = world.push(branch, sha)
            life += counter.measure(f"push {n}", lambda: world.deliver(push))  # noqa: B023
            if mode == "build":
                life += counter.measure(
                    "build succeeded",
                    lambda: build_succeeded(world, branch, sha),  # noqa: B023
                )
            life += counter.measure(
                "deployment completed", lambda: world.deployment_completed(branch)
            )
        counter.measure(
            "same push redelivered (not in life)",
            lambda: world.deliver(world.push(branch, sha_of(2), at=world.env(branch).ordering)),  # type: ignore[union-attr]
        )
        life += counter.measure("delete event", lambda: world.deliver(world.delete(branch)))
        print(f"{'whole life':<28} {life:>3} calls (create, two pushes, delete)")


if __name__ == "__main__":
    main()
