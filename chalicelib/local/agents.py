"""The local stack's AWS clients: moto's fake credentials, and each stand-in's marker.

branchenv's own clients end their User-Agent with ``branchenv/<version>``
(chalicelib/aws/clients.py). The local stack's stand-ins, which play AWS's part and
Lambda's (creating the base infrastructure, the queue pump, the event relay, the data plane,
the strict layer's reads), call the same moto server through factories made here, marked
``branchenv-local/<role>`` instead, so that whoever counts at the server (bench/
lifecycle_calls_local.py) tells the two apart by the header alone. Never used in Lambda.
"""

from __future__ import annotations

import boto3

from chalicelib.aws.clients import ClientFactory

STAND_IN = "branchenv-local"
ROLES = ("stack", "pump", "relay", "dataplane", "strict")
# Dummy credentials: moto and the stand-ins accept anything, and nothing real is ever sent.
FAKE_AWS_KEY = "testing"


def fake_session(region: str) -> boto3.Session:
    """A boto3 session with moto's fake credentials, so no real ones are ever read."""
    return boto3.Session(
        aws_access_key_id=FAKE_AWS_KEY,
        aws_secret_access_key=FAKE_AWS_KEY,
        aws_session_token=FAKE_AWS_KEY,
        region_name=region,
    )


def stand_in_agent(role: str) -> str:
    """The User-Agent marker of the stand-in ``role`` (one of :data:`ROLES`)."""
    if role not in ROLES:
        raise ValueError(f"unknown stand-in role {role!r}; one of {', '.join(ROLES)}")
    return f"{STAND_IN}/{role}"


def stand_in_clients(region: str, endpoint_url: str | None) -> ClientFactory:
    """The local stack's own factory (role ``stack``: the base infrastructure, its reads),
    on a session of its own; :func:`stand_in` derives the other roles' from it."""
    session = fake_session(region)
    return ClientFactory(region, endpoint_url, session=session, user_agent=stand_in_agent("stack"))


def stand_in(clients: ClientFactory, role: str) -> ClientFactory:
    """``clients``' region, endpoint and session, marked as the stand-in ``role``."""
    return clients.with_user_agent(stand_in_agent(role))
