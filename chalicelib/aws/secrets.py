"""Secrets Manager (the only caller): reads secret values; never logs them."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import translate


class SecretValues:
    """Reads the current value of a secret by ARN."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, arn: str) -> str:
        try:
            answer = self._client.get_secret_value(SecretId=arn)
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc, "GetSecretValue", not_found=("ResourceNotFoundException",)
            ) from exc
        return str(answer.get("SecretString", ""))
