"""Prints the AWS calls each stage of a branch's life makes, per operation (moto)."""

from __future__ import annotations

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
from tests.conftest import settings_for  # noqa: E402
from tests.integration.harness import World, sha_of  # noqa: E402

SERVICES = ("dynamodb", "ecs", "elbv2", "route53", "ecr", "sqs", "codebuild", "events")


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
        self.calls[f"{prefix}:{model.name}"] += 1

    def measure(self, label: str, action: Callable[[], None]) -> None:
        self.calls.clear()
        action()
        total = sum(self.calls.values())
        detail = ", ".join(f"{op} {n}" for op, n in sorted(self.calls.items()))
        print(f"{label:<28} {total:>3} calls: {detail}")


def main() -> None:
    with mock_aws():
        clients = ClientFactory("us-east-1")
        infra = create_base_infrastructure(
            clients, app_name="bench", preview_domain="preview.example.com", region="us-east-1"
        )
        world = World(settings_for(infra), clients)
        counter = CallCounter(clients)
        branch = "feature/bench"
        world.push_image(sha_of(1))
        world.push_image(sha_of(2))
        world.deliver(world.push("warm-up", sha_of(1)))  # caches the ECR repository URI
        print("AWS calls per stage (SQS calls of the intake and the queue itself not shown):")
        counter.measure("create event", lambda: world.deliver(world.create(branch)))
        counter.measure(
            "first push (image in ECR)", lambda: world.deliver(world.push(branch, sha_of(1)))
        )
        counter.measure("deployment completed", lambda: world.deployment_completed(branch))
        counter.measure(
            "same push redelivered",
            lambda: world.deliver(world.push(branch, sha_of(1), at=world.env(branch).ordering)),
        )  # type: ignore[union-attr]
        counter.measure("second push", lambda: world.deliver(world.push(branch, sha_of(2))))
        counter.measure("delete event", lambda: world.deliver(world.delete(branch)))


if __name__ == "__main__":
    main()
