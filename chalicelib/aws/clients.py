"""Creates AWS clients: adaptive retries for every client, an endpoint for the local stack.

Clients are created on first use, never at import time, so importing ``app.py`` stays
light and tests can hand in their own. The default session is botocore's own (boto3's
import alone costs the webhook's cold start about 80 ms more); a boto3.Session may be
passed instead, e.g. with explicit credentials for the local stack.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=20,
)


class ClientFactory:
    """Makes (and caches) one client per service for one region and endpoint.

    Thread-safe: sessions are not, so clients are created under a lock; the clients
    themselves may be shared between threads.
    """

    def __init__(
        self,
        region: str,
        endpoint_url: str | None = None,
        config: Config = RETRY_CONFIG,
        session: Any | None = None,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config
        self._session: Any = session or botocore.session.get_session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        """The session clients are made from; another factory given it makes clients
        without parsing the service models again (each session parses its own)."""
        return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                create = getattr(self._session, "create_client", None) or self._session.client
                self._clients[service] = create(
                    service,
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                )
            return self._clients[service]
