"""Who sent a request is in its User-Agent: branchenv's clients end it with
``branchenv/<version>``, the local stack's stand-ins for AWS with ``branchenv-local/<role>``
and never with branchenv's marker, so a count at the server (bench/lifecycle_calls_local.py)
tells them apart. The headers are read as sent, on their way to moto."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from chalicelib.aws.clients import RETRY_CONFIG, USER_AGENT, ClientFactory
from chalicelib.local.agents import ROLES, stand_in, stand_in_clients
from tests.conftest import REGION, SESSION

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"(?:^|\s)(branchenv(?:-[a-z]+)?/[\w.-]+)")


def sent_user_agent(clients: ClientFactory) -> str:
    """The User-Agent header of a real ListQueues request of ``clients``' SQS client."""
    seen: list[str] = []

    def keep(request: Any, **_: Any) -> None:
        seen.append(request.headers["User-Agent"].decode())

    sqs = clients.client("sqs")
    sqs.meta.events.register_first("before-send", keep)
    sqs.list_queues()
    assert len(seen) == 1
    return seen[0]


@pytest.mark.usefixtures("aws")
def test_branchenvs_clients_carry_its_marker_with_the_projects_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"branchenv/{version}" == USER_AGENT
    agent = sent_user_agent(ClientFactory(REGION, session=SESSION))
    assert TOKEN.findall(agent) == [USER_AGENT]


@pytest.fixture(scope="module")
def stack_clients() -> ClientFactory:
    """The local stack's own factory (one boto3 session for the module: each parses the
    service models again); moto's endpoint is in-process here."""
    return stand_in_clients(REGION, None)


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("role", ROLES)
def test_the_stand_ins_clients_carry_their_role_and_not_branchenvs_marker(
    role: str, stack_clients: ClientFactory
) -> None:
    clients = stack_clients if role == "stack" else stand_in(stack_clients, role)
    assert TOKEN.findall(sent_user_agent(clients)) == [f"branchenv-local/{role}"]


@pytest.mark.usefixtures("aws")
def test_a_callers_own_extra_stays_before_the_marker() -> None:
    config = RETRY_CONFIG.merge(Config(user_agent_extra="ops-tool/2"))
    agent = sent_user_agent(ClientFactory(REGION, config=config, session=SESSION))
    assert agent.endswith(f"ops-tool/2 {USER_AGENT}")


def test_an_unknown_stand_in_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stand-in role"):
        stand_in(ClientFactory(REGION, session=SESSION), "bench")
