"""``branchenv local``: run the whole system on 127.0.0.1 until Ctrl-C or SIGTERM.

Starts :class:`chalicelib.local.stack.LocalStack`, prints the URLs it serves, how fast
local time runs against AWS time, and how to send a first webhook, then waits; on
Ctrl-C/SIGTERM it stops every thread and closes every port. Never binds anything but
loopback and never prints the webhook secret's value unless it is the documented default.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType
from typing import Any

from chalicelib.local.stack import (
    DEFAULT_ALB_PORT,
    DEFAULT_APP_NAME,
    DEFAULT_AWS_PORT,
    DEFAULT_DOMAIN,
    DEFAULT_PORT,
    DEFAULT_STUB_PORT,
    DEFAULT_TIME_FACTOR,
    DEFAULT_WEBHOOK_SECRET,
    LocalStack,
    StackError,
    StackOptions,
)
from chalicelib.tools.cli import CommandError

# Application Load Balancers per Region, the default quota (ELB guide, "Quotas for your
# Application Load Balancers").
MAX_LOAD_BALANCERS = 50


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "local", help="run branchenv on this machine (moto for AWS, stand-ins for Slack/GitHub)"
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--build-seconds",
        type=float,
        default=1.0,
        help="how long the stand-in CodeBuild takes per build (default %(default)s)",
    )
    parser.add_argument(
        "--reap-seconds",
        type=float,
        default=60.0,
        help="how often the reaper runs (default %(default)s)",
    )
    parser.add_argument(
        "--time-factor",
        type=int,
        default=DEFAULT_TIME_FACTOR,
        help="local time runs this many times faster than AWS time: the queue's visibility "
        "timeout, the worker's waits and AWS's propagation windows are divided by it, "
        "rounded up (default %(default)s)",
    )
    parser.add_argument(
        "--load-balancers",
        type=int,
        default=1,
        help="load balancers in the local base infrastructure, each with a listener the "
        "worker spreads previews over (default %(default)s)",
    )
    parser.add_argument(
        "--image",
        default=None,
        help="where a Docker engine answers `docker info`, every preview task runs this "
        "image (your application's) with its task definition's environment and port; "
        "otherwise, and by default, a built-in preview app",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request and step")
    parser.set_defaults(func=run)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="app port (%(default)s)")
    parser.add_argument(
        "--aws-port", type=int, default=DEFAULT_AWS_PORT, help="moto server port (%(default)s)"
    )
    parser.add_argument(
        "--stub-port",
        type=int,
        default=DEFAULT_STUB_PORT,
        help="Slack/GitHub stand-ins and /_local controls port (%(default)s)",
    )
    parser.add_argument(
        "--alb-port",
        type=int,
        default=DEFAULT_ALB_PORT,
        help="the local load balancer: previews at http://<slug>.<domain>:PORT (%(default)s)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=DEFAULT_WEBHOOK_SECRET,
        help="secret webhooks are signed with (default %(default)s)",
    )
    parser.add_argument(
        "--domain", default=DEFAULT_DOMAIN, help="preview domain (default %(default)s)"
    )
    parser.add_argument(
        "--app-name", default=DEFAULT_APP_NAME, help="installation name (default %(default)s)"
    )


def options_from(args: argparse.Namespace) -> StackOptions:
    for flag in ("port", "aws_port", "stub_port", "alb_port"):
        value = getattr(args, flag)
        if not 0 <= value <= 65535:
            raise CommandError(f"--{flag.replace('_', '-')} must be a port number, got {value}")
    time_factor = getattr(args, "time_factor", DEFAULT_TIME_FACTOR)
    if time_factor < 1:
        raise CommandError(
            f"--time-factor must be a whole number of at least 1 (1: as on AWS), got {time_factor}"
        )
    load_balancers = getattr(args, "load_balancers", 1)
    if not 1 <= load_balancers <= MAX_LOAD_BALANCERS:
        raise CommandError(
            f"--load-balancers must be between 1 and {MAX_LOAD_BALANCERS}, got {load_balancers}"
        )
    return StackOptions(
        port=args.port,
        aws_port=args.aws_port,
        stub_port=args.stub_port,
        webhook_secret=args.webhook_secret,
        domain=args.domain,
        app_name=args.app_name,
        build_seconds=getattr(args, "build_seconds", 1.0),
        reap_seconds=getattr(args, "reap_seconds", 60.0),
        time_factor=time_factor,
        load_balancers=load_balancers,
        alb_port=args.alb_port,
        image=getattr(args, "image", None),
    )


def configure_logging(verbose: bool, level: int = logging.INFO) -> None:
    """Log branchenv's own steps at ``level`` (debug with ``verbose``), libraries quietly."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger().setLevel(level)
    logging.getLogger("chalicelib").setLevel(logging.DEBUG if verbose else level)
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "github", "slack_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    stack = LocalStack(options_from(args))
    stopping = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _set_on_signal(stopping)) if main_thread else None
    try:
        try:
            stack.start()
        except StackError as exc:
            raise CommandError(str(exc)) from None
        print(banner(stack), flush=True)
        while not stopping.wait(1.0):
            pass
        print("stopping...", flush=True)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print("stopped", flush=True)
    return 0


def banner(stack: LocalStack) -> str:
    options = stack.options
    port = stack.balancer.port if stack.balancer is not None else options.alb_port
    lines = ["branchenv is running locally (Ctrl-C to stop):"]
    lines += [f"  {name:<32} {url}" for name, url in stack.urls().items()]
    secret = (
        options.webhook_secret
        if options.webhook_secret == DEFAULT_WEBHOOK_SECRET
        else "(the one you gave)"
    )
    lines += [
        f"  preview domain                   {options.domain}",
        f"  load balancers                   {options.load_balancers}",
        f"  webhook secret                   {secret}",
        "",
        stack.time_note()[:1].upper() + stack.time_note()[1:] + ".",
        "",
        "Try it:",
        f"  branchenv webhook send --event push --branch feature/login "
        f"--url {stack.app_url}/github/webhook --stub-url {stack.stub_url}",
        f"  curl {stack.app_url}/api/environments",
        f"  open the preview it lists: http://<slug>.{options.domain}:{port}/",
    ]
    return "\n".join(lines)


def _set_on_signal(event: threading.Event) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    return handler
