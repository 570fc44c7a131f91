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


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((LOOPBACK, port)) == 0


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


def test_stop_stops_every_preview_task_it_started() -> None:
    from chalicelib.local.tasks import InProcessLauncher
    from chalicelib.tools.commands.webhook import fake_sha
    from tests.e2e.conftest import push, slug_of, stack_options, wait_for_environment

    before = set(threading.enumerate())
    stack = LocalStack(stack_options(app_name="tasks-stop"))
    stack.start()
    try:
        push(stack, "feature/running", fake_sha("running"))
        record = wait_for_environment(
            stack, slug_of(stack, "feature/running"), lambda r: r.get("status") == "ready"
        )
        assert stack.data_plane is not None
        launcher = stack.data_plane.tasks.launcher
        assert isinstance(launcher, InProcessLauncher)
        task_ports = [app.port for app in launcher.launched]
    finally:
        stack.stop()

    assert record.get("status") == "ready"
    # Nothing listens there any more (the port may sit in TIME_WAIT: the server closed
    # its health-check connections first).
    assert task_ports and not any(_listening(port) for port in task_ports)
    assert set(threading.enumerate()) <= before
