"""``branchenv reap [--dry-run]``: one reaper sweep against the configured installation.

Settings come from the environment (the same variables the Lambda reads), through
``Settings.from_environ``; AWS credentials from the usual boto3 chain.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reap",
        help="remove environments whose branch is gone or idle, and leftover resources",
        description="Run one reaper sweep: branches gone on GitHub, environments idle past "
        "their TTL, environments stuck in a transient state, and resources tagged as this "
        "installation's with no live environment.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be done; change nothing"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chalicelib.runtime import Runtime

    report = Runtime.from_environ(os.environ).reaper.run(dry_run=args.dry_run)
    print(json.dumps(report.to_json(), indent=2))
    return 1 if report.errors else 0
