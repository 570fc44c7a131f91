"""``branchenv local``'s flags become the stack's options: the load balancer's port and
the image Docker runs, each checked before anything starts."""

from __future__ import annotations

import argparse

import pytest

from chalicelib.local.stack import DEFAULT_ALB_PORT
from chalicelib.tools.cli import CommandError
from chalicelib.tools.commands import local


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    local.register(parser.add_subparsers())
    return parser.parse_args(["local", *argv])


def test_the_load_balancer_listens_on_8080_by_default_and_runs_the_built_in_app() -> None:
    options = local.options_from(_parse())

    assert (options.alb_port, options.image) == (DEFAULT_ALB_PORT, None) == (8080, None)


def test_alb_port_and_image_are_passed_on() -> None:
    options = local.options_from(_parse("--alb-port", "9090", "--image", "shop:dev"))

    assert (options.alb_port, options.image) == (9090, "shop:dev")


def test_an_alb_port_out_of_range_is_refused_with_the_flag() -> None:
    with pytest.raises(CommandError, match="--alb-port"):
        local.options_from(_parse("--alb-port", "70000"))
