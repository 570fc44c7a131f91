"""Secret settings: one reader for the webhook, the dashboard and the notifiers; from
settings, else Secrets Manager by ARN (a JSON list during rotation), read once while warm,
and an error that names the setting, never the value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.secrets import Secrets, SecretUnavailable
from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Settings, SettingsError
from chalicelib.handlers.dashboard import KeySource
from chalicelib.runtime import Runtime
from tests.conftest import offline_settings

VALUE = "xoxb-do-not-print-me"


def no_client() -> Any:
    raise AssertionError("Secrets Manager must not be called for a value set in settings")


def secrets_of(clients: ClientFactory, **settings: Any) -> Secrets:
    return Secrets.over(offline_settings(**settings), clients)


def store(clients: ClientFactory, name: str, value: str) -> str:
    arn: str = clients.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
    return arn


def count_reads(clients: ClientFactory) -> list[str]:
    """The SecretIds of every GetSecretValue the client sends from now on."""
    seen: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params["SecretId"])

    events = clients.client("secretsmanager").meta.events
    events.register("provide-client-params.secrets-manager.GetSecretValue", record)
    return seen


def test_a_value_in_settings_is_used_as_is_without_asking_secrets_manager() -> None:
    secrets = Secrets(
        offline_settings(slack_token=VALUE, webhook_secrets=("now", "before")), no_client
    )

    assert secrets.slack_token.current() == VALUE
    assert secrets.webhook.required() == ("now", "before")


def test_an_arn_is_read_from_secrets_manager(clients: ClientFactory) -> None:
    arn = store(clients, "demo/slack", f"  {VALUE}\n")

    assert secrets_of(clients, slack_token_arn=arn).slack_token.current() == VALUE


def test_a_json_list_during_rotation_accepts_every_value_the_first_current(
    clients: ClientFactory,
) -> None:
    arn = store(clients, "demo/webhook", json.dumps(["new-secret", "old-secret"]))
    secrets = secrets_of(clients, webhook_secret_arn=arn, dashboard_api_key_arn=arn)

    assert secrets.webhook.required() == ("new-secret", "old-secret")
    assert secrets.dashboard_keys.values() == ("new-secret", "old-secret")
    assert secrets.webhook.current() == "new-secret"


def test_a_read_is_kept_while_warm_and_a_failed_one_is_tried_again(
    clients: ClientFactory,
) -> None:
    secrets = secrets_of(clients, slack_token_arn="demo/slack")  # a SecretId may be a name
    reads = count_reads(clients)
    with pytest.raises(SecretUnavailable):
        secrets.slack_token.current()
    store(clients, "demo/slack", "first")

    assert [secrets.slack_token.current() for _ in range(3)] == ["first"] * 3
    clients.client("secretsmanager").put_secret_value(SecretId="demo/slack", SecretString="second")
    assert secrets.slack_token.current() == "first"  # the warm process keeps its read
    assert reads == ["demo/slack", "demo/slack"]
    assert secrets_of(clients, slack_token_arn="demo/slack").slack_token.current() == "second"


def test_a_secret_that_cannot_be_read_names_the_setting(clients: ClientFactory) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/nope-AbCdEf"
    with pytest.raises(SecretUnavailable) as error:
        secrets_of(clients, github_token_arn=missing).github_token.current()

    assert str(error.value).startswith("BRANCHENV_GITHUB_TOKEN_ARN: the secret could not be read")
    assert error.value.code == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("held", "says"),
    [
        (f'["{VALUE}", 7]', "must hold one value or a JSON list of strings"),
        (f"[{VALUE}", "must hold one value or a JSON list of strings"),
        ("   ", "holds no value"),
    ],
)
def test_a_secret_holding_nothing_usable_names_the_setting_never_the_value(
    clients: ClientFactory, held: str, says: str
) -> None:
    arn = store(clients, "demo/slack", held)
    secrets = secrets_of(clients, slack_token_arn=arn)
    with pytest.raises(SecretUnavailable) as error:
        secrets.slack_token.current()

    text = f"{error.value} {error.value!r} {secrets!r} {secrets.slack_token!r}"
    assert text.startswith(f"BRANCHENV_SLACK_TOKEN_ARN: the secret {says}")
    assert VALUE not in text
    assert error.value.__cause__ is None
    assert error.value.__context__ is None


def test_neither_variable_set() -> None:
    secrets = Secrets(offline_settings(), no_client)

    assert secrets.dashboard_keys.values() == ()
    assert not secrets.github_app_private_key.configured
    with pytest.raises(
        SettingsError, match="set BRANCHENV_WEBHOOK_SECRET or BRANCHENV_WEBHOOK_SECRET_ARN"
    ):
        secrets.webhook.required()


def test_the_webhook_the_dashboard_and_slack_share_one_read_per_secret(
    clients: ClientFactory,
) -> None:
    webhook = store(clients, "demo/webhook", json.dumps(["w-new", "w-old"]))
    keys = store(clients, "demo/dashboard", "dash-key")
    slack = store(clients, "demo/slack", VALUE)
    settings: Settings = offline_settings(
        webhook_secret_arn=webhook,
        dashboard_api_key_arn=keys,
        slack_token_arn=slack,
        slack_api_url="http://127.0.0.1:9/api/",  # nothing listens: the post fails after the read
        slack_channel="#previews",
    )
    runtime = Runtime(settings, clients)
    reads = count_reads(clients)
    env = Environment(slug="main", repository="acme/shop", branch="main", status=Status.READY)

    for _ in range(2):
        assert runtime.webhook_secrets() == ("w-new", "w-old")
        assert KeySource(runtime)() == ("dash-key",)
        runtime.notifier.environment_changed(env)

    assert sorted(reads) == sorted([webhook, keys, slack])
