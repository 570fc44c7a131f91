"""Secret settings, read one way everywhere (Secrets Manager's only caller).

A secret setting (the webhook secret, the dashboard keys, the Slack and GitHub tokens, the
GitHub App's private key) is its ``BRANCHENV_<NAME>`` variable when that is set, else the
Secrets Manager secret ``BRANCHENV_<NAME>_ARN`` names. The secret may hold one value or,
during a rotation, a JSON list of values, the current one first. A successful read is kept
for the life of the process (a warm Lambda reads each secret once); a failed one is tried
again on the next call, so a secret fixed in Secrets Manager is picked up without a
redeploy. :class:`Secrets` holds one :class:`SecretSetting` per secret of an installation;
the runtime keeps one, so the webhook, the dashboard and the notifiers share its reads.

Must never: put a secret's value in a log line, an error message or a repr. Errors name the
variable and what went wrong (AWS's error code), so the operator knows which setting to fix.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import AwsError
from chalicelib.domain.settings_env import PREFIX, SettingsError

if TYPE_CHECKING:
    from chalicelib.aws.clients import ClientFactory
    from chalicelib.domain.settings import Settings

OPERATION = "GetSecretValue"


class SecretUnavailable(AwsError):
    """A secret setting's Secrets Manager secret could not be read, or holds nothing usable.
    The message names the ``..._ARN`` variable and the cause, never the value."""


class SecretSetting:
    """One secret setting: its value(s) from settings, else from Secrets Manager by ARN."""

    def __init__(
        self,
        name: str,
        given: str | Sequence[str] | None,
        arn: str | None,
        client: Callable[[], Any],
    ) -> None:
        """``name`` is the variable without ``BRANCHENV_``; ``given`` its value(s) from
        settings; ``arn`` the ``_ARN`` variable's value; ``client`` makes the Secrets
        Manager client, called on the first read only."""
        self.name = name
        self._given = (given,) if isinstance(given, str) else tuple(given or ())
        self._arn = arn
        self._client = client
        self._read: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    @property
    def variable(self) -> str:
        return PREFIX + self.name

    @property
    def arn_variable(self) -> str:
        return f"{PREFIX}{self.name}_ARN"

    @property
    def configured(self) -> bool:
        """Whether either variable is set (nothing is read to say so)."""
        return bool(self._given or self._arn)

    def values(self) -> tuple[str, ...]:
        """Every accepted value, the current one first; () when neither variable is set.
        Raises SecretUnavailable when the secret cannot be read or holds nothing."""
        if self._given:
            return self._given
        if not self._arn:
            return ()
        with self._lock:
            if self._read is None:
                self._read = self._fetch(self._arn)
            return self._read

    def required(self) -> tuple[str, ...]:
        """:meth:`values`, and a SettingsError naming both variables when neither is set."""
        found = self.values()
        if not found:
            raise SettingsError(f"set {self.variable} or {self.arn_variable}")
        return found

    def current(self) -> str:
        """The current value (the first of a rotation's list)."""
        return self.required()[0]

    def __repr__(self) -> str:
        source = "settings" if self._given else "secret" if self._arn else "unset"
        return f"{type(self).__name__}({self.variable}, from {source})"

    def _fetch(self, arn: str) -> tuple[str, ...]:
        client = self._client()  # a boto3 secretsmanager client (tests/terraform/test_iam.py)
        try:
            answer = client.get_secret_value(SecretId=arn)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise SecretUnavailable(
                f"{self.arn_variable}: the secret could not be read ({OPERATION}: {code}); "
                "check that the ARN names an existing secret this function's role may read",
                code=code,
                operation=OPERATION,
            ) from None
        except BotoCoreError as exc:
            raise SecretUnavailable(
                f"{self.arn_variable}: Secrets Manager could not be reached ({type(exc).__name__})",
                operation=OPERATION,
            ) from None
        found = parse_values(str(answer.get("SecretString") or ""))
        if found is None:
            raise SecretUnavailable(
                f"{self.arn_variable}: the secret must hold one value or a JSON list of "
                "strings (during a rotation)",
                operation=OPERATION,
            )
        if not found:
            raise SecretUnavailable(
                f"{self.arn_variable}: the secret holds no value (an empty SecretString, or "
                "only a SecretBinary); put the value in its SecretString",
                operation=OPERATION,
            )
        return found


def parse_values(text: str) -> tuple[str, ...] | None:
    """A secret's values: one value, or a JSON list of strings (during a rotation); None
    when it looks like a list but is not a JSON list of strings. Blank values are dropped."""
    text = text.strip()
    if not text.startswith("["):
        return (text,) if text else ()
    try:
        items: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return None
    return tuple(item.strip() for item in items if item.strip())


class Secrets:
    """Every secret setting of one installation, each read at most once while warm."""

    def __init__(self, settings: Settings, client: Callable[[], Any]) -> None:
        s = settings
        self.webhook = SecretSetting(
            "WEBHOOK_SECRET", s.webhook_secrets, s.webhook_secret_arn, client
        )
        self.dashboard_keys = SecretSetting(
            "DASHBOARD_API_KEY", s.dashboard_api_keys, s.dashboard_api_key_arn, client
        )
        self.slack_token = SecretSetting("SLACK_TOKEN", s.slack_token, s.slack_token_arn, client)
        self.github_token = SecretSetting(
            "GITHUB_TOKEN", s.github_token, s.github_token_arn, client
        )
        self.github_app_private_key = SecretSetting(
            "GITHUB_APP_PRIVATE_KEY", s.github_app_private_key, s.github_app_private_key_arn, client
        )

    @classmethod
    def over(cls, settings: Settings, clients: ClientFactory) -> Secrets:
        """The secret settings of ``settings``, read through ``clients``' Secrets Manager."""
        return cls(settings, lambda: clients.client("secretsmanager"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<not shown>)"
