"""Who may read the dashboard (``BRANCHENV_DASHBOARD_AUTH``) and which keys it accepts.

Access is checked here, at request time, because Chalice fixes a route's authorizer when it
packages the app and the mode is a runtime setting:
- ``none``: open (the local stack);
- ``api_key``: the ``X-Api-Key`` header or ``?key=`` must equal one of the dashboard keys
  (settings, else the Secrets Manager secret), compared in constant time;
- ``iam``: API Gateway must have authenticated an IAM caller (AWS_IAM authorization on the
  methods); a request without a caller identity is refused, so a missing authorizer fails
  closed.

Nothing here ever echoes a key.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.aws.errors import AwsError
from chalicelib.domain.settings import SettingsError
from chalicelib.handlers.dashboard.answers import Request

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime


class Access:
    """Decides whether a request may read the dashboard (see the module docstring)."""

    def __init__(self, mode: str, keys: Callable[[], Sequence[str]]) -> None:
        self._mode = mode
        self._keys = keys

    def refusal(self, request: Request) -> tuple[int, str] | None:
        """None if the request may look; else (status, what to do next)."""
        if self._mode == "none":
            return None
        if self._mode == "iam":
            return None if _iam_caller(request.context) else (403, _IAM_REFUSED)
        presented = request.headers.get("x-api-key") or request.query.get("key") or ""
        try:
            keys = self._keys()
        except (SettingsError, AwsError, ValueError):
            return 503, "the dashboard key could not be read; try again in a minute"
        if not keys:
            return 503, _NO_KEY
        if not presented or not _matches_any(presented, keys):
            return 401, _KEY_REFUSED
        return None


_IAM_REFUSED = (
    "this dashboard needs AWS IAM authentication (BRANCHENV_DASHBOARD_AUTH=iam); "
    "sign the request with SigV4, and make sure the API's methods use AWS_IAM authorization"
)
_KEY_REFUSED = (
    "a dashboard key is needed: add ?key=<dashboard key> to the URL or send the "
    "X-Api-Key header; ask whoever runs branchenv for the key"
)
_NO_KEY = (
    "BRANCHENV_DASHBOARD_AUTH is api_key but no key is configured: set "
    "BRANCHENV_DASHBOARD_API_KEY_ARN (or BRANCHENV_DASHBOARD_API_KEY)"
)


def _iam_caller(context: Mapping[str, Any]) -> bool:
    identity = context.get("identity") or {}
    return bool(isinstance(identity, Mapping) and identity.get("userArn"))


def _matches_any(presented: str, keys: Sequence[str]) -> bool:
    given = presented.encode("utf-8")
    # Compare against every key, without stopping early, so timing says nothing.
    results = [hmac.compare_digest(given, key.encode("utf-8")) for key in keys]
    return any(results)


class KeySource:
    """The accepted dashboard keys: the runtime's secret setting ``DASHBOARD_API_KEY``
    (chalicelib.aws.secrets: from settings, else the Secrets Manager secret, one key or a
    JSON list during rotation; a successful read cached while warm, a failed one retried
    on the next request). () when no key is configured."""

    def __init__(self, deps: Runtime) -> None:
        self._deps = deps

    def __call__(self) -> tuple[str, ...]:
        return self._deps.secrets.dashboard_keys.values()
