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

Retry backoff waits in ``time.sleep`` (botocore's ``Endpoint._needs_retry`` sleeps the delay
its ``needs-retry`` handler answers). A factory given ``sleep`` hands that delay to it
instead, so tests can let a backoff pass without waiting; production passes none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.retries import standard

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
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config
        self._user_agent = user_agent
        self._session: Any = session or botocore.session.get_session()
        self._clients: dict[str, Any] = {}
        self._lock = lock or threading.Lock()
        self._sleep = sleep  # None: botocore's own time.sleep

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
            sleep=self._sleep,
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
                if self._sleep is not None:
                    _backoff_through(self._clients[service], self._sleep)
            return self._clients[service]


def _backoff_through(client: Any, sleep: Callable[[float], None]) -> None:
    """Make ``client``'s retries wait in ``sleep`` instead of ``time.sleep``.

    botocore's standard (and adaptive) mode registers its retry handler on
    ``needs-retry.<service>`` under the unique id ``retry-config-<service>``
    (botocore/retries/standard.py ``register_retry_handler``), and ``Endpoint._needs_retry``
    sleeps whatever delay it answers. The handler is made again by that same function,
    with the client's own attempt limit, and wrapped: it still decides whether to retry,
    counts the attempts, spends the retry quota and computes the backoff; the delay goes to
    ``sleep`` and botocore is told 0, so it retries at once. adaptive mode's client-side
    rate limiter (its own ``before-send`` handler) is left as it is.
    """
    retries = client.meta.config.retries or {}
    if retries.get("mode") not in ("standard", "adaptive"):
        raise ValueError(f"sleep needs the standard or adaptive retry mode, not {retries!r}")
    service = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
    client.meta.events.unregister(event, unique_id=unique_id)
    handler = standard.register_retry_handler(client, retries.get("total_max_attempts"))
    client.meta.events.unregister(event, unique_id=unique_id)

    def needs_retry(**kwargs: Any) -> Any:
        delay = handler.needs_retry(**kwargs)
        if delay is None or delay is False:  # no retry
            return delay
        sleep(delay)
        return 0  # retry now: the wait has passed

    client.meta.events.register(event, needs_retry, unique_id=unique_id)
