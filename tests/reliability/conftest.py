"""Fixtures of the reliability suite: one moto world per test and GitHub's truth."""

from __future__ import annotations

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.settings import Settings
from tests.integration.harness import World
from tests.reliability.support import FakeGitHub


@pytest.fixture
def world(settings: Settings, clients: ClientFactory) -> World:
    return World(settings, clients)


@pytest.fixture
def github() -> FakeGitHub:
    return FakeGitHub()
