"""The base infrastructure built once per test process and put back, whole, in each test's
moto.

Building it through the API costs about 0.2-0.4 CPU-seconds a test (about 30 calls, each
serialised by botocore and parsed by moto); a few hundred tests ask for it. Its state is
what moto's backends hold, so after the first build that state is kept as bytes (pickle;
about 30 KB) and every later test gets a fresh copy of it in its own ``mock_aws`` (a few
milliseconds). Each copy is new objects, so what one test changes no other test sees; the
``mock_aws`` of each test still starts and ends empty, as moto makes it.

This reads moto's internals (``BackendDict``: service → account → region → backend), so it is
kept here, in one place, for tests only. It stays out of the way where it could be wrong: it
keeps or puts back a state only when nothing else has touched the test's moto yet; otherwise
the infrastructure is built through the API as before.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from moto.core.base_backend import BackendDict

# moto's backends hold locks and conditions (SQS queues wait on one for long polls); a copy
# gets new ones, unheld. Only this module's pickler knows that: nothing global changes.
_NEW_LOCKS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    **copyreg.dispatch_table,
    type(threading.Lock()): lambda _: (threading.Lock, ()),
    type(threading.RLock()): lambda _: (threading.RLock, ()),
    threading.Condition: lambda _: (threading.Condition, ()),
}

# service → account → region → backend, for the BackendDicts that hold something
_State = list[tuple[BackendDict[Any], dict[str, dict[str, Any]]]]


def moto_is_untouched() -> bool:
    """True when the running mock holds no backend yet (nothing has called moto)."""
    return not BackendDict._instances  # type: ignore[misc]


def _current() -> _State:
    return [
        (services, {account: dict(regions) for account, regions in services.items()})
        for services in BackendDict._instances  # type: ignore[misc]
    ]


class MotoSnapshot:
    """Every backend the running mock holds, as bytes, put back by :meth:`restore`."""

    def __init__(self) -> None:
        state = _current()
        self._services = [services for services, _ in state]
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = _NEW_LOCKS
        pickler.dump([backends for _, backends in state])
        self._bytes = buffer.getvalue()

    def restore(self) -> None:
        """Put a fresh copy of the state in the running mock, which must be untouched."""
        if not moto_is_untouched():
            raise RuntimeError("moto already holds state: a snapshot would overwrite it")
        copies: list[dict[str, dict[str, Any]]] = pickle.loads(self._bytes)
        for services, accounts in zip(self._services, copies, strict=True):
            for account, regions in accounts.items():
                account_backends = services[account]  # registers it with the mock
                for region, backend in regions.items():
                    dict.__setitem__(account_backends, region, backend)


T = TypeVar("T")


class Once(Generic[T]):
    """What ``build`` makes in an untouched moto, made through the API the first time and
    restored from a snapshot after that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[Any, tuple[T, MotoSnapshot]] = {}

    def get(self, key: Any, build: Callable[[], T]) -> T:
        with self._lock:
            kept = self._kept.get(key)
        if not moto_is_untouched():
            return build()
        if kept is not None:
            value, snapshot = kept
            snapshot.restore()
            return value
        value = build()
        with self._lock:
            self._kept[key] = (value, MotoSnapshot())
        return value
