"""Fault injection through botocore's own event hooks (no patching): the k-th AWS call
takes effect in AWS (moto) but its caller sees an error, as when a Lambda is cut off or
a response is lost right after a call succeeded."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.clients import ClientFactory

SERVICES = ("dynamodb", "ecs", "elbv2", "route53", "ecr", "sqs")


class FaultInjector:
    """Counts AWS calls made through ``clients`` and fails the one numbered ``fail_at``."""

    def __init__(self, clients: ClientFactory, code: str = "InternalFailure") -> None:
        self.calls: list[str] = []
        self.fail_at: int | None = None
        self.code = code
        for service in SERVICES:
            clients.client(service).meta.events.register("after-call", self._after_call)

    def reset(self, fail_at: int | None = None) -> None:
        self.calls = []
        self.fail_at = fail_at

    def _after_call(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            self.fail_at = None
            raise ClientError(
                {"Error": {"Code": self.code, "Message": "injected after the call took effect"}},
                model.name,
            )
