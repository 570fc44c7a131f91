"""Fault injection through botocore's own event hooks (no patching).

Two ways to fail, both on the clients of one ClientFactory:

- :meth:`FaultInjector.reset` fails the k-th AWS call with one of :data:`KINDS`, either
  ``before`` the call reaches AWS (a ``before-call`` hook: nothing happened in moto) or
  ``after`` it took effect (an ``after-call`` hook: moto holds the change but the caller
  sees an error, as when a Lambda is cut off or a response is lost). Both hooks run
  outside botocore's retry loop, so the error reaches branchenv as it would once the
  client's retries were used up.
- :meth:`FaultInjector.storm` throttles a seeded random share of the HTTP attempts
  (a ``before-send`` hook answering 400 Throttling before moto sees the request), so
  botocore's own retry mode (adaptive, from ClientFactory) deals with them as it would
  with AWS.

Must never: change what moto holds, or fail a call it was not asked to fail.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from chalicelib.aws.clients import ClientFactory

SERVICES = ("dynamodb", "ecs", "elbv2", "route53", "ecr", "sqs")
WITH_EVENTS = (*SERVICES, "events")  # EventBridge too: its failures only delay a notification
KINDS = ("throttling", "server-error", "read-timeout", "connect-timeout")
WHEN = ("before", "after")
THROTTLED_URL = "https://throttled.invalid/"  # where a throttled attempt goes: not to moto


def injected_error(kind: str, operation: str, when: str) -> Exception:
    """The exception a caller sees for a fault of ``kind`` on ``operation``."""
    endpoint = f"https://{operation.lower()}.invalid/"
    answer: Any
    if kind == "throttling":
        error = {"Code": "ThrottlingException", "Message": f"Rate exceeded (injected {when})"}
        answer = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return ClientError(answer, operation)
    if kind == "server-error":
        error = {"Code": "InternalFailure", "Message": f"injected {when} the call"}
        answer = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}
        return ClientError(answer, operation)
    if kind == "read-timeout":
        return ReadTimeoutError(endpoint_url=endpoint)
    if kind == "connect-timeout":
        return ConnectTimeoutError(endpoint_url=endpoint)
    raise ValueError(f"unknown fault kind {kind!r}; use one of {KINDS}")


class FaultInjector:
    """Counts AWS calls made through ``clients`` and fails the one numbered ``fail_at``."""

    def __init__(
        self,
        clients: ClientFactory,
        code: str = "InternalFailure",
        *,
        services: tuple[str, ...] = SERVICES,
    ) -> None:
        self.calls: list[str] = []
        self.fail_at: int | None = None
        self.kind: str | None = None  # None: a ClientError with ``code``
        self.when = "after"
        self.code = code
        self.failed: list[str] = []  # the operations that were failed
        self.throttled = 0
        self.attempts = 0
        self._storm_rate = 0.0
        self._random = random.Random(0)
        self._lock = threading.Lock()
        for service in services:
            client = clients.client(service)
            client.meta.events.register("before-call", self._before_call)
            client.meta.events.register("after-call", self._after_call)
            protocol = client.meta.service_model.protocol
            client.meta.events.register_first("before-send", self._throttler(protocol))

    def reset(
        self, fail_at: int | None = None, *, kind: str | None = None, when: str = "after"
    ) -> None:
        """Count from zero again; fail call number ``fail_at`` (1-based) ``when`` it runs."""
        if when not in WHEN:
            raise ValueError(f"when must be one of {WHEN}")
        self.calls = []
        self.fail_at = fail_at
        self.kind = kind
        self.when = when

    def storm(self, rate: float, seed: int) -> None:
        """Throttle a share ``rate`` of HTTP attempts, chosen by a generator seeded ``seed``."""
        self._storm_rate = rate
        self._random = random.Random(seed)

    def _before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(model.name)
            due = self.fail_at is not None and len(self.calls) == self.fail_at
        if due and self.when == "before":
            self._fail(model.name)

    def _after_call(self, model: Any, **_: Any) -> None:
        due = self.fail_at is not None and len(self.calls) == self.fail_at
        if due and self.when == "after":
            self._fail(model.name)

    def _fail(self, operation: str) -> None:
        self.fail_at = None
        self.failed.append(operation)
        if self.kind is None:
            answer: Any = {"Error": {"Code": self.code, "Message": "injected after the call"}}
            raise ClientError(answer, operation)
        raise injected_error(self.kind, operation, self.when)

    def _throttler(self, protocol: str) -> Any:
        def before_send(request: Any, **_: Any) -> AWSResponse | None:
            with self._lock:
                self.attempts += 1
                throttle = self._storm_rate > 0 and self._random.random() < self._storm_rate
                if throttle:
                    self.throttled += 1
            if not throttle:
                return None
            # moto's own before-send handler runs after this one: pointed elsewhere, it
            # leaves the request alone, so a throttled attempt changes nothing, as in AWS.
            request.url = THROTTLED_URL
            return _throttling_response(protocol)

        return before_send


class _Body:
    """The raw body botocore reads from an HTTP response."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._data


def _throttling_response(protocol: str) -> AWSResponse:
    """A 400 Throttling answer in the service's own wire format."""
    if protocol == "json":
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        headers = {"Content-Type": "application/x-amz-json-1.1"}
    else:  # query and rest-xml
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            "<Message>Rate exceeded</Message></Error><RequestId>injected</RequestId>"
            "</ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    http_headers = HTTPHeaders()
    for key, value in headers.items():
        http_headers[key] = value
    return AWSResponse(THROTTLED_URL, 400, http_headers, _Body(body.encode()))
