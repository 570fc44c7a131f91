"""Settings for a GitHub App: all of it or none, never beside a token, the key never echoed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.domain.settings import Settings, SettingsError
from tests.unit.test_settings import BASE

KEY_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/github-app-private-key-AbC"


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def read(**variables: str) -> Settings:
    return Settings.from_environ({**BASE, **{f"BRANCHENV_{k}": v for k, v in variables.items()}})


def app(**more: str) -> dict[str, str]:
    return {"GITHUB_APP_ID": "12345", "GITHUB_APP_INSTALLATION_ID": "678", **more}


def test_an_app_with_a_key_arn_reads_into_typed_values() -> None:
    settings = read(**app(GITHUB_APP_PRIVATE_KEY_ARN=KEY_ARN))
    assert settings.github_app_id == 12345
    assert settings.github_app_installation_id == 678
    assert settings.github_app_private_key_arn == KEY_ARN


def test_a_local_key_is_kept_as_pem(pem: str) -> None:
    assert read(**app(GITHUB_APP_PRIVATE_KEY=pem)).github_app_private_key == pem


def test_a_key_pasted_on_one_line_gets_its_newlines_back(pem: str) -> None:
    one_line = pem.strip().replace("\n", "\\n")
    assert read(**app(GITHUB_APP_PRIVATE_KEY=one_line)).github_app_private_key == pem


def test_the_key_is_not_in_the_settings_repr(pem: str) -> None:
    settings = read(**app(GITHUB_APP_PRIVATE_KEY=pem))
    assert "PRIVATE KEY" not in repr(settings)
    assert pem.splitlines()[1] not in repr(settings)


def test_an_app_id_alone_names_what_is_missing() -> None:
    with pytest.raises(SettingsError) as exc:
        read(GITHUB_APP_ID="12345")
    message = str(exc.value)
    assert "BRANCHENV_GITHUB_APP_INSTALLATION_ID" in message
    assert "BRANCHENV_GITHUB_APP_PRIVATE_KEY_ARN" in message


def test_a_key_without_ids_names_the_ids(pem: str) -> None:
    with pytest.raises(SettingsError) as exc:
        read(GITHUB_APP_PRIVATE_KEY=pem)
    message = str(exc.value)
    assert "BRANCHENV_GITHUB_APP_ID" in message
    assert "BRANCHENV_GITHUB_APP_INSTALLATION_ID" in message
    assert pem.splitlines()[1] not in message


def test_a_token_and_an_app_together_are_refused() -> None:
    with pytest.raises(SettingsError) as exc:
        read(GITHUB_TOKEN="ghp_secretvalue0000", **app(GITHUB_APP_PRIVATE_KEY_ARN=KEY_ARN))
    message = str(exc.value)
    assert "BRANCHENV_GITHUB_TOKEN" in message
    assert "BRANCHENV_GITHUB_APP_ID" in message
    assert "ghp_secretvalue0000" not in message


def test_a_token_arn_and_part_of_an_app_are_refused() -> None:
    with pytest.raises(SettingsError) as exc:
        read(GITHUB_TOKEN_ARN="arn:aws:secretsmanager:eu-west-1:1:secret:t", GITHUB_APP_ID="1")
    assert "BRANCHENV_GITHUB_TOKEN_ARN" in str(exc.value)


def test_a_key_and_a_key_arn_together_are_refused(pem: str) -> None:
    with pytest.raises(SettingsError) as exc:
        read(**app(GITHUB_APP_PRIVATE_KEY=pem, GITHUB_APP_PRIVATE_KEY_ARN=KEY_ARN))
    message = str(exc.value)
    assert "BRANCHENV_GITHUB_APP_PRIVATE_KEY_ARN and BRANCHENV_GITHUB_APP_PRIVATE_KEY" in message
    assert pem.splitlines()[1] not in message


def test_a_key_that_is_not_pem_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as exc:
        read(**app(GITHUB_APP_PRIVATE_KEY="not-a-key-s3cr3t"))
    assert "BRANCHENV_GITHUB_APP_PRIVATE_KEY must be" in str(exc.value)
    assert "s3cr3t" not in str(exc.value)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_an_app_id_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(SettingsError) as exc:
        read(**app(GITHUB_APP_ID=value, GITHUB_APP_PRIVATE_KEY_ARN=KEY_ARN))
    assert "BRANCHENV_GITHUB_APP_ID must be a positive whole number" in str(exc.value)


def test_no_github_settings_at_all_is_fine() -> None:
    settings = read()
    assert (settings.github_token, settings.github_app_id) == (None, None)
