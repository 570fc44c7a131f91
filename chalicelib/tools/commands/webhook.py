"""``branchenv webhook send``: sign and send a GitHub-shaped webhook, for trying an intake.

The payloads have the shape of GitHub's own (push, create, delete; see the fixtures from
octokit/webhooks), signed with ``X-Hub-Signature-256`` exactly as GitHub signs them, so
the intake's real verification and parsing run. The demo and the end-to-end tests send
their webhooks through :func:`send`. Never prints the secret.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.handlers.webhooks import ZERO_SHA, sign
from chalicelib.tools.cli import CommandError

EVENTS = ("push", "create", "delete")
DEFAULT_REPOSITORY = "octo-org/shop"
DEFAULT_URL = "http://127.0.0.1:8000/github/webhook"
DEFAULT_SECRET = "branchenv-local-secret"  # the default of `branchenv local`
DEFAULT_BRANCH = "main"
TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Delivery:
    """One webhook as sent: what GitHub would put in the headers and body."""

    event: str
    delivery_id: str
    body: bytes


@dataclass(frozen=True)
class Reply:
    """The intake's answer."""

    status: int
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def register(subparsers: Any) -> None:
    webhook = subparsers.add_parser("webhook", help="send signed GitHub webhooks by hand")
    actions = webhook.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    send_parser = actions.add_parser(
        "send", help="sign and send a push, create or delete webhook for a branch"
    )
    send_parser.add_argument("--event", choices=EVENTS, default="push")
    send_parser.add_argument("--branch", required=True, help="branch name, e.g. feature/login")
    send_parser.add_argument(
        "--repository", default=DEFAULT_REPOSITORY, help="owner/name (default %(default)s)"
    )
    send_parser.add_argument("--sha", help="commit sha pushed (default: derived from the time)")
    send_parser.add_argument("--url", default=DEFAULT_URL, help="intake URL (default %(default)s)")
    send_parser.add_argument(
        "--secret",
        default=DEFAULT_SECRET,
        help="webhook secret (default: the one `branchenv local` uses)",
    )
    send_parser.add_argument("--delivery", help="X-GitHub-Delivery id (default: a new UUID)")
    send_parser.add_argument(
        "--stub-url",
        help="a local stack's stand-in URL (e.g. http://127.0.0.1:8001): also tell its "
        "GitHub stand-in the branch exists at the sha (or is gone), as GitHub would",
    )
    send_parser.set_defaults(func=run_send)


def run_send(args: argparse.Namespace) -> int:
    if "/" not in args.repository:
        raise CommandError("--repository must look like owner/name")
    sha = args.sha or fake_sha(f"{args.branch}:{time.time()}")
    if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha):
        raise CommandError("--sha must be a full 40-character lower-case hex commit id")
    delivery = build_delivery(
        args.event, repository=args.repository, branch=args.branch, sha=sha, delivery=args.delivery
    )
    try:
        if args.stub_url:
            set_branch(
                args.stub_url, args.repository, args.branch, sha, exists=args.event != "delete"
            )
        reply = send(args.url, delivery, args.secret)
    except OSError as exc:
        raise CommandError(f"could not reach {args.url}: {_reason(exc)}; is it running?") from None
    print(f"{args.event} {args.repository}@{args.branch} -> HTTP {reply.status}")
    print(reply.body)
    return 0 if 200 <= reply.status < 300 else 1


def build_delivery(
    event: str,
    *,
    repository: str,
    branch: str,
    sha: str | None = None,
    before: str | None = None,
    delivery: str | None = None,
    pusher: str = "octocat",
    pushed_at: float | None = None,
) -> Delivery:
    """A GitHub-shaped ``event`` payload for ``branch`` of ``repository``, serialised."""
    when = time.time() if pushed_at is None else pushed_at
    repo = _repository(repository, when, iso_time=event != "push")
    sender = _user(pusher)
    if event == "push":
        payload = _push(repo, sender, branch, sha or fake_sha(branch), before, when)
    elif event in ("create", "delete"):
        payload = _ref_event(event, repo, sender, branch)
    else:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}")
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Delivery(event=event, delivery_id=delivery or str(uuid.uuid4()), body=body)


def send(url: str, delivery: Delivery, secret: str) -> Reply:
    """POST ``delivery`` to ``url`` with GitHub's headers and signature; any status is a Reply."""
    request = urllib.request.Request(
        url,
        data=delivery.body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/branchenv",
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(delivery.body, secret),
        },
    )
    return _exchange(request)


def set_branch(stub_url: str, repository: str, branch: str, sha: str, *, exists: bool) -> Reply:
    """Tell a local GitHub stand-in that ``branch`` now points at ``sha``, or is gone."""
    body = {"repository": repository, "branch": branch, "sha": sha}
    request = urllib.request.Request(
        f"{stub_url.rstrip('/')}/_local/github/branches",
        data=json.dumps(body).encode(),
        method="PUT" if exists else "DELETE",
        headers={"Content-Type": "application/json"},
    )
    return _exchange(request)


def fake_sha(seed: str) -> str:
    """A 40-hex commit id derived from ``seed`` (for payloads that need one)."""
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


def _exchange(request: urllib.request.Request) -> Reply:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            return Reply(answer.status, answer.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode("utf-8", "replace"))


def _reason(exc: OSError) -> str:
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)


def _push(
    repo: dict[str, Any],
    sender: dict[str, Any],
    branch: str,
    sha: str,
    before: str | None,
    when: float,
) -> dict[str, Any]:
    owner_url = repo["html_url"]
    commit = {
        "id": sha,
        "tree_id": fake_sha(f"tree:{sha}"),
        "distinct": True,
        "message": f"Update {branch}",
        "timestamp": datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds"),
        "url": f"{owner_url}/commit/{sha}",
        "author": {"name": sender["login"], "email": f"{sender['login']}@users.noreply.github.com"},
        "committer": {
            "name": sender["login"],
            "email": f"{sender['login']}@users.noreply.github.com",
        },
        "added": [],
        "removed": [],
        "modified": ["README.md"],
    }
    previous = before or ZERO_SHA
    return {
        "ref": f"refs/heads/{branch}",
        "before": previous,
        "after": sha,
        "created": previous == ZERO_SHA,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{owner_url}/compare/{previous[:12]}...{sha[:12]}",
        "commits": [commit],
        "head_commit": commit,
        "repository": repo,
        "pusher": {"name": sender["login"], "email": f"{sender['login']}@users.noreply.github.com"},
        "sender": sender,
    }


def _ref_event(
    event: str, repo: dict[str, Any], sender: dict[str, Any], branch: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": branch,
        "ref_type": "branch",
        "pusher_type": "user",
        "repository": repo,
        "sender": sender,
    }
    if event == "create":
        payload["master_branch"] = repo["default_branch"]
        payload["description"] = repo["description"]
    return payload


def _repository(full_name: str, when: float, *, iso_time: bool) -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    html_url = f"https://github.com/{full_name}"
    pushed_at: int | str = (
        datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if iso_time else int(when)
    )
    return {
        "id": int(fake_sha(full_name)[:8], 16),
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {**_user(owner), "name": owner},
        "html_url": html_url,
        "description": "",
        "fork": False,
        "url": f"https://api.github.com/repos/{full_name}",
        "deployments_url": f"https://api.github.com/repos/{full_name}/deployments",
        "created_at": int(when) - 86400,
        "updated_at": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pushed_at": pushed_at,
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{html_url}.git",
        "default_branch": DEFAULT_BRANCH,
        "master_branch": DEFAULT_BRANCH,
        "visibility": "public",
    }


def _user(login: str) -> dict[str, Any]:
    return {
        "login": login,
        "id": int(fake_sha(login)[:7], 16),
        "avatar_url": f"https://avatars.githubusercontent.com/{login}",
        "url": f"https://api.github.com/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }
