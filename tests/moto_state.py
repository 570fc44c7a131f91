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


def _moto_is_untouched() -> bool:
    """True when the running mock holds no backend yet (nothing has called moto)."""
    return not BackendDict._instances  # type: ignore[misc]


class _MotoSnapshot:
    """Every backend the running mock holds (service → account → region → backend), as
    bytes, put back by :meth:`restore` into an untouched mock."""

    def __init__(self) -> None:
        self._services: list[BackendDict[Any]] = list(BackendDict._instances)  # type: ignore[misc]
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = _NEW_LOCKS
        pickler.dump([{a: dict(regions) for a, regions in s.items()} for s in self._services])
        self._bytes = buffer.getvalue()

    def restore(self) -> None:
        copies: list[dict[str, dict[str, Any]]] = pickle.loads(self._bytes)
        for services, accounts in zip(self._services, copies, strict=True):
            for account, regions in accounts.items():
                account_backends = services[account]  # registers it with the mock
                for region, backend in regions.items():
                    dict.__setitem__(account_backends, region, backend)


T = TypeVar("T")


class Once(Generic[T]):
    """What ``build`` makes in an untouched moto: made through the API the first time, put
    back from a snapshot after that; built through the API whenever moto is not untouched
    (a snapshot would overwrite what is there)."""

    def __init__(self) -> None:
        self._kept: tuple[T, _MotoSnapshot] | None = None

    def get(self, build: Callable[[], T]) -> T:
        if not _moto_is_untouched():
            return build()
        if self._kept is not None:
            value, snapshot = self._kept
            snapshot.restore()
            return value
        value = build()
        self._kept = (value, _MotoSnapshot())
        return value
