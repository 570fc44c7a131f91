"""Settings: every variable read once; a bad one is an error that names it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chalicelib.domain.settings import REQUIRED_VARIABLES, Settings, SettingsError

LISTENERS = json.dumps([{"listener_arn": "arn:l", "dns_name": "alb.example.com", "zone_id": "Z1"}])
BASE = {
    "AWS_REGION": "eu-west-1",
    "BRANCHENV_APP_NAME": "shop",
    "BRANCHENV_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/shop-work.fifo",
    "BRANCHENV_TABLE": "shop-environments",
    "BRANCHENV_CLUSTER": "shop",
    "BRANCHENV_VPC_ID": "vpc-1",
    "BRANCHENV_SUBNETS": "subnet-1, subnet-2",
    "BRANCHENV_SECURITY_GROUPS": "sg-1",
    "BRANCHENV_LISTENERS": LISTENERS,
    "BRANCHENV_HOSTED_ZONE_ID": "Z2",
    "BRANCHENV_PREVIEW_DOMAIN": "Preview.Example.com.",
    "BRANCHENV_ECR_REPOSITORY": "shop",
    "BRANCHENV_EXECUTION_ROLE_ARN": "arn:aws:iam::1:role/x",
    "BRANCHENV_CODEBUILD_PROJECT": "shop-build",
}


def with_(**changes: str | None) -> dict[str, str]:
    environ = dict(BASE)
    for key, value in changes.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


def test_a_complete_environment_reads_into_typed_values() -> None:
    settings = Settings.from_environ(
        with_(BRANCHENV_WEBHOOK_SECRET="s1", BRANCHENV_WEBHOOK_SECRET_PREVIOUS="s0")
    )

    assert settings.subnets == ("subnet-1", "subnet-2")
    assert settings.preview_domain == "preview.example.com"
    assert settings.listeners[0].dns_name == "alb.example.com"
    assert settings.webhook_secrets == ("s1", "s0")
    assert (settings.cpu, settings.memory, settings.spot, settings.image_source) == (
        256,
        512,
        True,
        "build",
    )
    assert settings.preview_url("a.preview.example.com") == "https://a.preview.example.com"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BRANCHENV_QUEUE_URL": None}, "BRANCHENV_QUEUE_URL is not set"),
        ({"AWS_REGION": None}, "AWS_REGION is not set"),
        ({"BRANCHENV_CPU": "lots"}, "BRANCHENV_CPU must be a whole number, got 'lots'"),
        ({"BRANCHENV_CONTAINER_PORT": "70000"}, "BRANCHENV_CONTAINER_PORT must be between"),
        ({"BRANCHENV_SPOT": "maybe"}, "BRANCHENV_SPOT must be true or false"),
        ({"BRANCHENV_APP_NAME": "Shop_App"}, "BRANCHENV_APP_NAME must be lower-case"),
        ({"BRANCHENV_APP_NAME": "a" * 24}, "2 to 23 characters"),
        ({"BRANCHENV_APP_NAME": "a"}, "2 to 23 characters"),
        ({"BRANCHENV_PREVIEW_DOMAIN": "localhost"}, "BRANCHENV_PREVIEW_DOMAIN must be a DNS"),
        ({"BRANCHENV_HEALTH_CHECK_PATH": "health"}, "must start with '/'"),
        (
            {"BRANCHENV_PREVIEW_DOMAIN": "p" * 63 + "." + "q" * 44 + ".com"},
            "BRANCHENV_PREVIEW_DOMAIN is 112 characters long; the limit is 111",
        ),
        (
            {"BRANCHENV_CONTAINER_PORTS": "8080"},
            "BRANCHENV_CONTAINER_PORTS must be a port range <from>-<to> with "
            "1 <= from <= to <= 65535, such as 80-65535, got '8080'",
        ),
        ({"BRANCHENV_CONTAINER_PORTS": "9000-8000"}, "BRANCHENV_CONTAINER_PORTS must be a port"),
        ({"BRANCHENV_CONTAINER_PORTS": "0-100"}, "BRANCHENV_CONTAINER_PORTS must be a port"),
        ({"BRANCHENV_CONTAINER_PORTS": "80-65536"}, "BRANCHENV_CONTAINER_PORTS must be a port"),
        (
            {"BRANCHENV_CONTAINER_PORTS": "3000-3999"},
            "BRANCHENV_CONTAINER_PORT 8080 is outside BRANCHENV_CONTAINER_PORTS 3000-3999",
        ),
        (
            {"BRANCHENV_CONTAINER_PORT": "22"},
            "BRANCHENV_CONTAINER_PORT 22 is outside BRANCHENV_CONTAINER_PORTS 80-65535",
        ),
        ({"BRANCHENV_LISTENERS": "not json"}, "BRANCHENV_LISTENERS must be a JSON list"),
        ({"BRANCHENV_LISTENERS": "[]"}, "BRANCHENV_LISTENERS must be a non-empty JSON list"),
        ({"BRANCHENV_LISTENERS": '[{"listener_arn": "x"}]'}, "BRANCHENV_LISTENERS[0] must have"),
        ({"BRANCHENV_IMAGE_SOURCE": "docker"}, "BRANCHENV_IMAGE_SOURCE must be one of"),
        ({"BRANCHENV_CODEBUILD_PROJECT": None}, "BRANCHENV_CODEBUILD_PROJECT is not set"),
        ({"BRANCHENV_IMAGE_SOURCE": "retag"}, "BRANCHENV_RETAG_PATTERN must contain {sha}"),
        (
            {"BRANCHENV_IMAGE_SOURCE": "retag", "BRANCHENV_RETAG_PATTERN": "latest"},
            "BRANCHENV_RETAG_PATTERN must contain {sha}",
        ),
    ],
)
def test_a_bad_setting_is_named_with_what_is_wrong(
    changes: dict[str, str | None], message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environ(with_(**changes))

    assert message in str(error.value)


def test_a_secret_value_never_appears_in_an_error() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environ(with_(BRANCHENV_WEBHOOK_SECRET="hunter2", BRANCHENV_CPU="x"))

    assert "hunter2" not in str(error.value)


def test_ci_and_retag_need_no_codebuild_project() -> None:
    ci = Settings.from_environ(with_(BRANCHENV_IMAGE_SOURCE="ci", BRANCHENV_CODEBUILD_PROJECT=None))
    retag = Settings.from_environ(
        with_(
            BRANCHENV_IMAGE_SOURCE="retag",
            BRANCHENV_RETAG_PATTERN="ci-{sha}",
            BRANCHENV_CODEBUILD_PROJECT=None,
        )
    )

    assert (ci.image_source, retag.retag_pattern) == ("ci", "ci-{sha}")


def test_the_container_port_range_defaults_to_what_terraform_opens() -> None:
    settings = Settings.from_environ(BASE)

    assert (settings.container_port, settings.container_ports) == (8080, (80, 65535))


def test_a_container_port_range_is_read_with_the_default_port_inside_it() -> None:
    settings = Settings.from_environ(
        with_(BRANCHENV_CONTAINER_PORTS=" 3000 - 3999 ", BRANCHENV_CONTAINER_PORT="3000")
    )

    assert (settings.container_port, settings.container_ports) == (3000, (3000, 3999))


def test_a_default_port_outside_the_range_says_how_to_widen_it() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environ(with_(BRANCHENV_CONTAINER_PORTS="80-443"))

    assert "Terraform variable container_port_range" in str(error.value)


def test_the_longest_preview_domain_that_leaves_a_16_character_slug_is_accepted() -> None:
    domain = "p" * 63 + "." + "q" * 43 + ".com"  # 111 = 128 - 1 - 16
    settings = Settings.from_environ(with_(BRANCHENV_PREVIEW_DOMAIN=domain.upper() + "."))

    assert settings.preview_domain == domain


@pytest.mark.parametrize("name", REQUIRED_VARIABLES)
def test_each_required_variable_unset_is_an_error_naming_it(name: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_environ(with_(**{name: None}))

    assert f"{name} is not set" in str(error.value)


def test_the_required_variables_are_the_ones_without_a_default() -> None:
    assert set(REQUIRED_VARIABLES) == set(BASE) - {"AWS_REGION", "BRANCHENV_CODEBUILD_PROJECT"}


def test_an_unset_variable_gives_the_default_written_on_its_field() -> None:
    settings = Settings.from_environ(BASE)

    defaults = {
        f.name: f.default
        for f in dataclasses.fields(Settings)
        if f.default is not dataclasses.MISSING and f.name != "codebuild_project"
    }
    assert {name: getattr(settings, name) for name in defaults} == defaults
    assert (settings.max_cpu, settings.history_days, settings.github_api_url) == (
        2048,
        14,
        "https://api.github.com",
    )


def test_secret_settings_stay_out_of_the_repr() -> None:
    settings = Settings.from_environ(
        with_(
            BRANCHENV_WEBHOOK_SECRET="hunter2",
            BRANCHENV_DASHBOARD_API_KEY="dash-key-1",
            BRANCHENV_SLACK_TOKEN="xoxb-secret",
            BRANCHENV_GITHUB_TOKEN="ghp_secret",
        )
    )

    text = repr(settings)
    assert not [s for s in ("hunter2", "dash-key-1", "xoxb-secret", "ghp_secret") if s in text]
    assert "preview.example.com" in text
