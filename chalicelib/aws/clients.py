"""Creates boto3 clients: adaptive retries for every client, an endpoint for the local stack.

Clients are created on first use, never at import time, so importing ``app.py`` stays
light and tests can hand in their own.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=20,
)


class ClientFactory:
    """Makes (and caches) one boto3 client per service for one region and endpoint.

    Thread-safe: boto3 sessions are not, so clients are created under a lock; the clients
    themselves may be shared between threads.
    """

    def __init__(
        self,
        region: str,
        endpoint_url: str | None = None,
        config: Config = RETRY_CONFIG,
        session: boto3.Session | None = None,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config
        self._session: Any = session or boto3.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                )
            return self._clients[service]
