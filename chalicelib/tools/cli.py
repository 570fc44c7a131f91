"""The ``branchenv`` command: parses the command line and dispatches to chalicelib.tools.commands.

Errors a person can act on (a bad setting, a missing tool) are printed as one line and
exit 2; nothing here prints a traceback for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "chalicelib.tools.commands.local",
    "chalicelib.tools.commands.demo",
    "chalicelib.tools.commands.webhook",
    "chalicelib.tools.commands.plan",
    "chalicelib.tools.commands.deploy",
    "chalicelib.tools.commands.reap",
)


class CommandError(Exception):
    """A command could not do its job; the message says what to do about it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branchenv",
        description="Ephemeral feature-branch environments on AWS.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from chalicelib.domain.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (CommandError, SettingsError) as exc:
        print(f"branchenv: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
