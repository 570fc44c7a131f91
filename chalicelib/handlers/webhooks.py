"""GitHub webhook signature verification and payload → BranchEvent.

Pure functions, no I/O: the intake calls them before it enqueues anything. A payload
that is not what GitHub sends raises :class:`MalformedPayload` (answered 400); a real
payload branchenv does not act on becomes :class:`Ignored` with a reason. Of the one rule
of which branches get a preview (chalicelib/engine/repoconfig/branches.py) the intake
applies the clause that needs no ``branchenv.yml``, the default branch's; converge applies
the rest once it has read the file.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.messages import BranchEvent
from chalicelib.engine.repoconfig.branches import default_branch_verdict

SIGNATURE_PREFIX = "sha256="
ZERO_SHA = "0" * 40
BRANCH_REF_PREFIX = "refs/heads/"


class MalformedPayload(ValueError):
    """The body is not a GitHub webhook payload of the kind its event header claims."""


@dataclass(frozen=True)
class Ignored:
    """A genuine payload that branchenv does not act on, and why."""

    reason: str


@dataclass(frozen=True)
class Ping:
    """GitHub's "the webhook works" event."""

    zen: str
    hook_id: int | None


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True if ``header`` is a valid signature of ``body`` under any of ``secrets``.

    Several secrets are accepted so a secret can be rotated without downtime. Every
    comparison is constant-time and every secret is tried, whatever matches first.
    """
    if not header or not header.startswith(SIGNATURE_PREFIX) or not secrets:
        return False
    valid = False
    for secret in secrets:
        valid |= hmac.compare_digest(sign(body, secret).encode(), header.encode())
    return valid


def parse(event: str, payload: Any, delivery_id: str) -> BranchEvent | Ignored | Ping:
    """Turn a verified payload of GitHub event ``event`` into what branchenv does about it."""
    if not isinstance(payload, dict):
        raise MalformedPayload("the body is not a JSON object")
    if event == "ping":
        hook_id = payload.get("hook_id")
        return Ping(
            zen=_text(payload, "zen"), hook_id=hook_id if isinstance(hook_id, int) else None
        )
    if event in ("create", "delete"):
        return _parse_ref_event(event, payload, delivery_id)
    if event == "push":
        return _parse_push(payload, delivery_id)
    return Ignored(f"event {event!r} is not one branchenv acts on (create, push, delete)")


def repository_of(payload: Any) -> str | None:
    """``owner/name`` of the payload's repository, if it has one."""
    if isinstance(payload, dict) and isinstance(payload.get("repository"), dict):
        name = payload["repository"].get("full_name")
        return name if isinstance(name, str) else None
    return None


def _parse_ref_event(
    event: str, payload: dict[str, Any], delivery_id: str
) -> BranchEvent | Ignored:
    ref = _text(payload, "ref")
    ref_type = _text(payload, "ref_type")
    repository = _repository(payload)
    if ref_type != "branch":
        return Ignored(f"{event} of a {ref_type}, not a branch")
    default_branch = payload.get("master_branch") or repository.get("default_branch")
    verdict = default_branch_verdict(
        ref, default_branch if isinstance(default_branch, str) else None
    )
    if verdict is not None:
        return Ignored(verdict.reason)
    return BranchEvent(
        repository=_text(repository, "full_name"),
        branch=ref,
        desired="present" if event == "create" else "absent",
        sha=None,
        ordering=_timestamp(repository.get("pushed_at")),
        delivery_id=delivery_id,
        event=event,
        pusher=_login(payload.get("sender")),
    )


def _parse_push(payload: dict[str, Any], delivery_id: str) -> BranchEvent | Ignored:
    ref = _text(payload, "ref")
    repository = _repository(payload)
    if not ref.startswith(BRANCH_REF_PREFIX):
        return Ignored(f"push to {ref!r}, not to a branch")
    branch = ref[len(BRANCH_REF_PREFIX) :]
    default_branch = repository.get("default_branch")
    verdict = default_branch_verdict(
        branch, default_branch if isinstance(default_branch, str) else None
    )
    if verdict is not None:
        return Ignored(verdict.reason)
    after = _text(payload, "after")
    deleted = payload.get("deleted") is True or after == ZERO_SHA
    if not deleted and not _is_sha(after):
        raise MalformedPayload("'after' is not a commit sha")
    head = payload.get("head_commit") if isinstance(payload.get("head_commit"), dict) else {}
    pusher = payload.get("pusher") if isinstance(payload.get("pusher"), dict) else {}
    return BranchEvent(
        repository=_text(repository, "full_name"),
        branch=branch,
        desired="absent" if deleted else "present",
        sha=None if deleted else after,
        ordering=_timestamp(repository.get("pushed_at")),
        delivery_id=delivery_id,
        event="push",
        pusher=_login(payload.get("sender")) or (pusher or {}).get("name"),
        commit_url=(head or {}).get("url") if not deleted else None,
    )


def _repository(payload: dict[str, Any]) -> dict[str, Any]:
    repository = payload.get("repository")
    if not isinstance(repository, dict):
        raise MalformedPayload("'repository' is missing")
    _text(repository, "full_name")
    return repository


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{key!r} is missing or not a string")
    return value


def _login(user: Any) -> str | None:
    if isinstance(user, dict) and isinstance(user.get("login"), str):
        return str(user["login"])
    return None


def _is_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def _timestamp(value: Any) -> float:
    """``repository.pushed_at``: Unix seconds in push payloads, ISO-8601 in the others."""
    if isinstance(value, bool):
        raise MalformedPayload("'repository.pushed_at' is not a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise MalformedPayload("'repository.pushed_at' is not a time") from None
    if value is None:
        return 0.0
    raise MalformedPayload("'repository.pushed_at' is not a time")
