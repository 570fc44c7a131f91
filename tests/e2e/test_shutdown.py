"""The local stack stops cleanly: no thread left running and every port free again."""

from __future__ import annotations

import socket
import threading
import urllib.parse

import pytest

from chalicelib.local.stack import LOOPBACK, LocalStack, StackError, StackOptions, free_port

pytestmark = pytest.mark.e2e


def _port(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None
    return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def test_stop_frees_every_port_and_thread() -> None:
    before = set(threading.enumerate())
    stack = LocalStack(
        StackOptions(port=0, aws_port=0, stub_port=0, alb_port=0, app_name="shutdown")
    )
    stack.start()
    ports = [_port(u) for u in (stack.app_url, stack.aws_url, stack.stub_url, stack.alb_url)]

    stack.stop()

    assert all(_bindable(port) for port in ports)
    assert set(threading.enumerate()) <= before


def test_a_busy_port_is_refused_with_the_flag_to_change() -> None:
    busy = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, busy))
        holder.listen()
        stack = LocalStack(
            StackOptions(port=busy, aws_port=0, stub_port=0, alb_port=0, app_name="busy")
        )

        with pytest.raises(StackError, match="--port"):
            stack.start()

    assert set(t.name for t in threading.enumerate()) & {"pump", "event-relay"} == set()
