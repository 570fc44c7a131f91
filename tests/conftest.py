"""Fixtures shared by every test: moto in-process made strict, the base infrastructure,
settings.

Fake credentials and an explicit region are set before any client exists (moto's own
advice); no test talks to real AWS. Every client the ``clients`` fixture makes carries the
strict-AWS layer (chalicelib/local/strict.py): what AWS refuses and moto accepts is refused
in tests too, on a manual clock that the tests (and tests/integration/harness.py) advance.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest

# moto's EC2 backend loads its ~1,400 default AMIs every time a mock starts (half a second
# to three of every test's setup); branchenv never asks for an AMI (Fargate only).
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from moto import mock_aws

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.settings import Listener, Settings
from chalicelib.tools.infra import BaseInfrastructure
from tests.moto_state import Once

if TYPE_CHECKING:
    from chalicelib.local.strict import ManualClock, StrictAws

EVENTS = Path(__file__).parent / "events"
REGION = "us-east-1"
APP = "demo"
DOMAIN = "preview.example.com"
WEBHOOK_SECRET = "test-webhook-secret"


# Longest first, so no worker is left with a long module at the end (`make test` runs
# pytest-xdist with --no-loadscope-reorder, which keeps this order; xdist's own order is
# by number of tests). The real AWS provider's Terraform module comes first: its apply takes
# minutes, most of it the provider's own waits, so it runs beside the rest of the suite on
# one worker. Then the modules that start a local stack or a browser, then the moto-heavy
# reliability and integration suites; the fast unit tests fill the end.
_LONGEST_FIRST = ("terraform", "e2e", "browser", "tests/reliability/", "tests/integration/")


def _rank(item: pytest.Item) -> int:
    path = item.nodeid
    for rank, mark_or_folder in enumerate(_LONGEST_FIRST):
        if item.get_closest_marker(mark_or_folder) is not None or path.startswith(mark_or_folder):
            return rank
    return len(_LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Sort the tests longest first (see _LONGEST_FIRST); within a rank the order is kept."""
    items.sort(key=_rank)


def load_event(name: str) -> Any:
    """A JSON payload from tests/events/ by file name (with or without .json)."""
    path = EVENTS / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process for the duration of the test."""
    with mock_aws():
        yield


# One botocore session for the whole run: a session parses each service's model once
# (about 0.1-0.3 s a service), and every test's clients come from it. Each ClientFactory
# still makes its own clients, with their own event hooks.
SESSION = botocore.session.get_session()


class OneRequestAtATime:
    """moto's in-process backends are not thread-safe ("Moto is not known to be thread
    safe": getmoto/moto#5881, documented by getmoto/moto#7166): two threads serialising
    and changing one backend's dicts fail with "dictionary changed size during iteration".
    AWS itself serves concurrent requests, so tests that run workers in threads
    (tests/reliability/test_parallel_workers.py) let moto answer one request at a time:
    taken in ``before-send`` (first, before moto's own handler answers), given back in
    ``response-received``, which botocore emits after every send, failed ones included.
    A request whose release never comes (an error while parsing) holds it at most
    ``LONGEST_HOLD`` seconds, so a test is slowed, never hung."""

    LONGEST_HOLD = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = threading.local()

    def install(self, session: Any) -> None:
        events = session.get_component("event_emitter")
        events.register_first("before-send", self._take, unique_id="one-request-take")
        events.register_last("response-received", self._give, unique_id="one-request-give")

    def _take(self, **_: Any) -> None:
        if not getattr(self._held, "yes", False):
            self._held.yes = self._lock.acquire(timeout=self.LONGEST_HOLD)

    def _give(self, **_: Any) -> None:
        if getattr(self._held, "yes", False):
            self._held.yes = False
            self._lock.release()


OneRequestAtATime().install(SESSION)


# AWS's windows are "a short while"; in tests one backoff (2 s) outlasts them, so every
# wait is met and costs a single redelivery instead of four.
TEST_WINDOWS = {"rule_propagation_seconds": 1.0, "target_group_release_seconds": 1.0}

_STRICT: weakref.WeakKeyDictionary[ClientFactory, tuple[StrictAws, ManualClock]] = (
    weakref.WeakKeyDictionary()
)


# The strict layer's own reads carry no hooks (nothing is ever installed on them), so one
# factory per endpoint serves every test: a client costs about 10 ms of CPU to make, and
# moto in-process answers a client whenever a mock is on, whichever test made it.
_READS: dict[str | None, ClientFactory] = {}
_READS_LOCK = threading.Lock()


def _reads(endpoint_url: str | None) -> ClientFactory:
    from chalicelib.local.strict import READS_CONFIG

    with _READS_LOCK:
        if endpoint_url not in _READS:
            _READS[endpoint_url] = ClientFactory(
                REGION, endpoint_url, config=READS_CONFIG, session=SESSION
            )
        return _READS[endpoint_url]


def strict(clients: ClientFactory, endpoint_url: str | None = None, **rules: Any) -> StrictAws:
    """Put the strict-AWS layer on ``clients`` (rules as StrictAws takes them), on a manual
    clock that :func:`strict_clock_of` finds again; its own reads share the run's session
    and go to ``endpoint_url`` (a moto server; None: moto in-process)."""
    from chalicelib.local.strict import ManualClock, StrictAws

    clock = ManualClock()
    reads = _reads(endpoint_url)
    windows = {**TEST_WINDOWS, **rules}
    layer = StrictAws(clock=clock.now, **windows).install(clients, reads=reads)
    _STRICT[clients] = (layer, clock)
    return layer


def strict_layer_of(clients: ClientFactory) -> StrictAws | None:
    """The strict layer installed on ``clients`` by :func:`strict`, if any."""
    found = _STRICT.get(clients)
    return found[0] if found else None


def strict_clock_of(clients: ClientFactory) -> ManualClock | None:
    """The clock of the strict layer on ``clients``: advance it to let AWS's time pass."""
    found = _STRICT.get(clients)
    return found[1] if found else None


@pytest.fixture
def clients(aws: None) -> ClientFactory:
    factory = ClientFactory(REGION, session=SESSION)
    strict(factory)
    return factory


_BASE_INFRASTRUCTURE: Once[BaseInfrastructure] = Once()


@pytest.fixture
def infra(clients: ClientFactory) -> BaseInfrastructure:
    """The base infrastructure (what terraform/ creates), made in moto: through the API by
    the first test of a process, then put back from a snapshot of moto's state
    (tests/moto_state.py; tests/integration/test_bootstrap.py builds it through the API)."""
    from chalicelib.local.bootstrap import create_base_infrastructure

    return _BASE_INFRASTRUCTURE.get(
        lambda: create_base_infrastructure(
            clients, app_name=APP, preview_domain=DOMAIN, region=REGION
        )
    )


def offline_settings(**changes: Any) -> Settings:
    """Settings for tests that touch no AWS resource (rendering, stand-ins, pure code)."""
    base = Settings(
        app_name=APP,
        region=REGION,
        queue_url=f"https://sqs.{REGION}.amazonaws.com/123456789012/{APP}-work.fifo",
        table_name=f"{APP}-environments",
        cluster=APP,
        vpc_id="vpc-1",
        subnets=("subnet-1",),
        security_groups=("sg-1",),
        listeners=(Listener("arn:listener", "alb.example.com", "Z1"),),
        hosted_zone_id="Z2",
        preview_domain=DOMAIN,
        ecr_repository=APP,
        execution_role_arn=f"arn:aws:iam::123456789012:role/{APP}-task-execution",
    )
    return replace(base, **changes)


def settings_for(infra: BaseInfrastructure, **extra: str) -> Settings:
    environ = infra.environment()
    environ["BRANCHENV_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    environ["BRANCHENV_IMAGE_SOURCE"] = "ci"
    environ.update({f"BRANCHENV_{k.upper()}": v for k, v in extra.items()})
    return Settings.from_environ(environ)


@pytest.fixture
def settings(infra: BaseInfrastructure) -> Settings:
    return settings_for(infra)
