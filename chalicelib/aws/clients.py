"""Creates AWS clients: adaptive retries for every client, an endpoint for the local stack.

Clients are created on first use, never at import time, so importing ``app.py`` stays
light and tests can hand in their own. The default session is botocore's own (boto3's
import alone costs the webhook's cold start about 80 ms more); a boto3.Session may be
passed instead, e.g. with explicit credentials for the local stack.

Every request carries ``branchenv/<version>`` at the end of its User-Agent (botocore's
``user_agent_extra``), so whoever reads requests at the server (CloudTrail's userAgent, or
the local stack's moto server) can tell branchenv's own calls from anyone else's; a factory
made with :meth:`ClientFactory.with_user_agent` carries another marker instead (the local
stack's stand-ins for AWS carry ``branchenv-local/<role>``).
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
# pyproject.toml's version (a Lambda package carries no distribution metadata to read it
# from); tests/integration/test_user_agent.py keeps the two in step.
USER_AGENT = "branchenv/0.1.0"


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
        user_agent: str = USER_AGENT,
        *,
        lock: threading.Lock | None = None,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config
        self._user_agent = user_agent
        self._session: Any = session or botocore.session.get_session()
        self._clients: dict[str, Any] = {}
        self._lock = lock or threading.Lock()

    @property
    def user_agent(self) -> str:
        """What this factory's clients append to their User-Agent."""
        return self._user_agent

    def with_user_agent(self, user_agent: str) -> ClientFactory:
        """A factory for the same region, endpoint, config and session whose clients carry
        ``user_agent`` instead; it shares this one's lock, as the session is not thread-safe."""
        return ClientFactory(
            self._region,
            self._endpoint_url,
            self._config,
            self._session,
            user_agent,
            lock=self._lock,
        )

    @property
    def session(self) -> Any:
        """The session clients are made from; another factory given it makes clients
        without parsing the service models again (each session parses its own)."""
        return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                create = getattr(self._session, "create_client", None) or self._session.client
                # A caller's own extra (in ``config``) stays, the marker goes after it.
                own = getattr(self._config, "user_agent_extra", None)
                extra = " ".join(filter(None, (own, self._user_agent)))
                self._clients[service] = create(
                    service,
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    config=self._config.merge(Config(user_agent_extra=extra)),
                )
            return self._clients[service]
