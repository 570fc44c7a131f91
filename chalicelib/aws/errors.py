"""The exceptions AWS gateways raise instead of botocore's.

Business logic catches these, never ``botocore.exceptions.ClientError``. Each carries the
AWS error code (when there is one) so logs stay useful, and a message with no secret.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "ServerException",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)


class AwsError(Exception):
    """An AWS call failed; ``code`` is the AWS error code, ``operation`` the API call."""

    def __init__(self, message: str, *, code: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES or not self.code


class NotFound(AwsError):
    """The resource does not exist (or no longer does)."""


class Conflict(AwsError):
    """The resource is in use or in a state that forbids the change; try again later."""


def translate(
    exc: Exception,
    operation: str,
    *,
    not_found: Collection[str] = (),
    conflict: Collection[str] = (),
) -> AwsError:
    """A project exception for a botocore exception raised by ``operation``: NotFound for
    the codes in ``not_found``, Conflict for those in ``conflict``, AwsError otherwise."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = f"{operation} failed: {code}: {error.get('Message', '')}".strip()
        kind = NotFound if code in not_found else Conflict if code in conflict else AwsError
        return kind(message, code=code, operation=operation)
    if isinstance(exc, BotoCoreError):
        return AwsError(f"{operation} failed: {exc.__class__.__name__}", operation=operation)
    raise exc


def call(
    operation: str,
    method: Any,
    *,
    not_found: Collection[str] = (),
    conflict: Collection[str] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Call a boto3 client ``method`` for API ``operation``; botocore errors come out
    translated (NotFound / Conflict for the codes given, AwsError otherwise)."""
    try:
        answer: dict[str, Any] = method(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, operation, not_found=not_found, conflict=conflict) from exc
    return answer
