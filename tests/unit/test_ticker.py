"""The local stand-ins' polling loop: every tick runs each work function, a failing one is
logged and does not stop the others, and stop() returns after the thread is done."""

from __future__ import annotations

import logging
import threading

import pytest

from chalicelib.local.ticker import Ticker


def test_each_tick_runs_every_work_even_after_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []
    enough = threading.Event()

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("moto answered 500")

    def steady() -> None:
        ran.append("steady")
        if ran.count("steady") >= 3:
            enough.set()

    ticker = Ticker("relay", 0.01, broken, steady)
    with caplog.at_level(logging.WARNING):
        ticker.start()
        assert enough.wait(5)
        ticker.stop()

    assert ran[:4] == ["broken", "steady", "broken", "steady"]
    assert "relay: broken failed (RuntimeError: moto answered 500)" in caplog.text
    after = len(ran)
    assert ticker.wait(0.05)  # stopped: returns at once, and no tick comes any more
    assert len(ran) == after


def test_the_first_tick_comes_one_interval_after_start() -> None:
    ran = threading.Event()
    ticker = Ticker("schedule", 30.0, ran.set)
    ticker.start()
    ticker.stop()  # before the first interval is over

    assert not ran.is_set()
    assert ticker.stopping
