"""One background thread that does its work every few seconds, for the local stand-ins.

The scheduled-event source (chalicelib/local/pump.py), the event relay (relay.py) and the
load balancer's health checks (health.py) each poll moto or call a handler on an
interval, until the stack stops. :class:`Ticker` is that loop, written once: the first
tick comes one interval after :meth:`Ticker.start`; each of its work functions runs in
turn, and one that raises is logged and does not stop the others or the next tick (moto
shutting down, or a bug: the stand-in keeps going). :meth:`Ticker.stop` returns once the
thread has finished its tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    """Calls each of ``work`` every ``seconds`` on a daemon thread named ``name``."""

    def __init__(self, name: str, seconds: float, *work: Callable[[], None]) -> None:
        self._name, self._seconds, self._work = name, seconds, work
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until stopped; True if stopped."""
        return self._stopping.wait(seconds)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._seconds):
            for work in self._work:
                try:
                    work()
                except Exception as exc:
                    if self._stopping.is_set():
                        return  # the stack is shutting moto down under it
                    what = getattr(work, "__name__", "work")
                    log.warning("%s: %s failed (%s: %s)", self._name, what, type(exc).__name__, exc)
                    log.debug("%s failure", self._name, exc_info=True)
