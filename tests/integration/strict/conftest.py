"""Fixtures of the strict-layer tests: one moto and one base infrastructure
(chalicelib/local/bootstrap.py) per module (creating it costs seconds), moto without the
layer (``plain``), and a factory of fresh layers on the same moto (``strict``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from moto import mock_aws

from chalicelib.aws.clients import ClientFactory
from chalicelib.local.bootstrap import create_base_infrastructure
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, DOMAIN, REGION, SESSION
from tests.integration.strict.support import CREDENTIALS, Strict, new_listener, plain_of


@pytest.fixture(scope="module")
def base() -> Iterator[BaseInfrastructure]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in CREDENTIALS.items():
            env.setenv(key, value)
        with mock_aws():
            clients = ClientFactory(REGION, session=SESSION)
            yield create_base_infrastructure(
                clients, app_name=APP, preview_domain=DOMAIN, region=REGION
            )


@pytest.fixture
def plain(base: BaseInfrastructure) -> ClientFactory:
    return plain_of()


@pytest.fixture
def strict(base: BaseInfrastructure) -> Callable[..., Strict]:
    return Strict


@pytest.fixture
def listener(plain: ClientFactory, base: BaseInfrastructure) -> str:
    """The listener of a load balancer of this test's own, in the base network."""
    return new_listener(plain, base)
