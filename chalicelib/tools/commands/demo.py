"""``branchenv demo``: start the local stack on free ports, play the scripted story, stop.

Exits 0 when every step reached its expected state and the audit found nothing left of
the deleted branch, 1 otherwise (with the step that failed), and always stops the stack.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from chalicelib.local.demo import DemoFailed, play
from chalicelib.local.stack import LocalStack, StackError, StackOptions
from chalicelib.tools.cli import CommandError
from chalicelib.tools.commands.local import configure_logging

# The scripted story's steps have seconds each: time runs 60x faster than on AWS, so an
# unexpected retry comes after the queue's 1800 s / 60 = 30 s, not 3 minutes.
DEMO_TIME_FACTOR = 60


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="start branchenv locally and play a short story of branches (exits 0 if ok)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds each step may take before the demo fails (default %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every step of the system")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = logging.getLogger()
    previous = root.level, logging.getLogger("chalicelib").level
    configure_logging(args.verbose, logging.INFO if args.verbose else logging.WARNING)
    try:
        return _play(args)
    finally:
        root.setLevel(previous[0])
        logging.getLogger("chalicelib").setLevel(previous[1])


def _play(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print("branchenv demo: starting the local stack (moto, app, stand-ins, load balancer)")
    options = StackOptions(
        port=0,
        aws_port=0,
        stub_port=0,
        alb_port=0,
        build_seconds=0.5,
        time_factor=DEMO_TIME_FACTOR,
    )
    stack = LocalStack(options)
    try:
        try:
            stack.start()
        except StackError as exc:
            raise CommandError(str(exc)) from None
        print(f"stack up in {time.monotonic() - started:.1f}s:")
        for name, url in stack.urls().items():
            print(f"  {name:<32} {url}")
        print(f"  {stack.time_note()}")
        play(stack, sys.stdout, timeout=args.timeout)
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    print(f"demo passed in {time.monotonic() - started:.1f}s")
    return 0
