"""HTTP stand-ins for the Slack Web API and the GitHub REST API, plus the local controls.

One threaded HTTP server on loopback serves:
- ``/slack/api/<method>``: ``auth.test``, ``chat.postMessage``, ``chat.update`` (what
  slack-sdk calls), checking what Slack checks and answering ``{"ok": false, "error":
  ...}`` as Slack does;
- ``/github/...``: the REST endpoints PyGithub calls for repositories, branches, contents,
  deployments and deployment statuses, checking what GitHub checks (auth header, the ref
  and the deployment exist, the state is allowed) and answering in GitHub's shapes; and,
  for a GitHub App (:class:`StandInApp`), ``POST /app/installations/{id}/access_tokens``,
  which checks the App's RS256 JWT and mints installation tokens the other endpoints
  accept until they expire;
- ``/_local/...``: JSON controls for people and tests: what was sent (``GET /_local/slack``,
  ``GET /_local/github``), which branches and files exist (``PUT``/``DELETE
  /_local/github/branches``, ``PUT /_local/github/files``), faults (``PUT /_local/faults``:
  Slack 429s, Slack or GitHub down, and ``{"ecs": {"fail_shas": [...]}}``, the commits
  whose ECS deployments the local event relay fails and rolls back) and ``POST
  /_local/reap`` (runs the reaper hook).

It records what it is sent so the local stack and tests can show it. It must never be
bound to anything but 127.0.0.1, never be imported by the deployed Lambda, and never
print a token it receives.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"
SLACK_PREFIX = "/slack/api/"
GITHUB_PREFIX = "/github"
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
MAX_BODY = 1024 * 1024
MAX_BLOCKS = 50


class Answer(Exception):
    """Stops handling a request with this HTTP status and JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Faults:
    """Failures the stand-ins simulate, set through ``PUT /_local/faults``."""

    slack_rate_limited: int = 0
    slack_retry_after: int = 1
    slack_down: bool = False
    github_down: bool = False
    ecs_fail_shas: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "slack": {
                "rate_limited": self.slack_rate_limited,
                "retry_after": self.slack_retry_after,
                "down": self.slack_down,
            },
            "github": {"down": self.github_down},
            "ecs": {"fail_shas": sorted(self.ecs_fail_shas)},
        }

    def update(self, body: dict[str, Any]) -> None:
        """Apply ``body``; nothing changes when any part of it is invalid (400)."""
        slack = _object(body.get("slack", {}), "slack")
        github = _object(body.get("github", {}), "github")
        changes: dict[str, Any] = {}
        if "rate_limited" in slack:
            changes["slack_rate_limited"] = _count(slack["rate_limited"], "slack.rate_limited")
        if "retry_after" in slack:
            changes["slack_retry_after"] = _count(slack["retry_after"], "slack.retry_after")
        if "down" in slack:
            changes["slack_down"] = bool(slack["down"])
        if "down" in github:
            changes["github_down"] = bool(github["down"])
        if "ecs" in body:
            changes["ecs_fail_shas"] = _ecs_fail_shas(body["ecs"])
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass(frozen=True)
class StandInApp:
    """The GitHub App the stand-in knows: its id, its installations, and the public half
    of its key (when given, JWT signatures are verified with it, as GitHub does)."""

    app_id: int
    installation_ids: frozenset[int]
    public_key: str | None = None
    token_seconds: int = 3600


@dataclass
class SlackState:
    """What the Slack stand-in was sent: messages by (channel, ts) and every call in order."""

    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self.clock):06d}"

    def to_json(self) -> dict[str, Any]:
        return {"messages": list(self.messages.values()), "calls": list(self.calls)}


@dataclass
class GitHubState:
    """What the GitHub stand-in knows (branches, files) and was sent (deployments)."""

    branches: dict[str, dict[str, str]] = field(default_factory=dict)
    known_shas: dict[str, set[str]] = field(default_factory=dict)
    files: dict[tuple[str, str, str], str] = field(default_factory=dict)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    installation_tokens: dict[str, float] = field(default_factory=dict)  # token → expiry
    minted: list[dict[str, Any]] = field(default_factory=list)  # never the token itself

    def to_json(self) -> dict[str, Any]:
        return {
            "installation_tokens": list(self.minted),
            "repositories": {
                repo: {"branches": dict(branches)} for repo, branches in self.branches.items()
            },
            "files": [
                {"repository": r, "path": p, "ref": ref} for (r, p, ref) in sorted(self.files)
            ],
            "deployments": [_public_deployment(d) for d in self.deployments.values()],
        }


class StandIns:
    """The Slack and GitHub stand-ins and the local controls, on one loopback port."""

    def __init__(
        self,
        port: int = 0,
        *,
        reap: Callable[[], dict[str, Any]] | None = None,
        slack_token: str | None = None,
        github_token: str | None = None,
        github_app: StandInApp | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._requested_port = port
        self.reap = reap
        self.slack_token = slack_token
        self.github_token = github_token
        self.github_app = github_app
        self.clock = clock
        self.lock = threading.Lock()
        self.faults = Faults()
        self.slack = SlackState()
        self.github = GitHubState()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-ins are not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def slack_api_url(self) -> str:
        """What to set as BRANCHENV_SLACK_API_URL."""
        return f"{self.url}{SLACK_PREFIX}"

    @property
    def github_api_url(self) -> str:
        """What to set as BRANCHENV_GITHUB_API_URL."""
        return f"{self.url}{GITHUB_PREFIX}"

    def start(self) -> StandIns:
        if self._server is not None:
            return self
        handler = type("BoundHandler", (_Handler,), {"standins": self})
        server = ThreadingHTTPServer((HOST, self._requested_port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="branchenv-standins",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StandIns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What the local stack and the demo call directly (the same as the HTTP controls).

    def set_branch(self, repository: str, branch: str, sha: str) -> None:
        with self.lock:
            self.github.branches.setdefault(repository, {})[branch] = sha
            self.github.known_shas.setdefault(repository, set()).add(sha)

    def delete_branch(self, repository: str, branch: str) -> bool:
        with self.lock:
            return self.github.branches.get(repository, {}).pop(branch, None) is not None

    def set_file(self, repository: str, path: str, content: str, ref: str = "*") -> None:
        with self.lock:
            self.github.branches.setdefault(repository, {})
            self.github.files[(repository, path.strip("/"), ref)] = content

    def slack_record(self) -> dict[str, Any]:
        with self.lock:
            return _copy(self.slack.to_json())

    def github_record(self) -> dict[str, Any]:
        with self.lock:
            return _copy(self.github.to_json())


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the Slack, GitHub or local-control code."""

    standins: StandIns
    server_version = "branchenv-standins/1"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests carry tokens in headers, and tests read stdout."""

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            body = self._read_body()
            if parts.path.startswith(SLACK_PREFIX):
                result = _slack(self.standins, self, parts.path[len(SLACK_PREFIX) :], body)
            elif parts.path == GITHUB_PREFIX or parts.path.startswith(GITHUB_PREFIX + "/"):
                path = parts.path[len(GITHUB_PREFIX) :]
                result = _github(self.standins, self, method, path, query, body)
            elif parts.path.startswith("/_local/"):
                result = _local(self.standins, method, parts.path, body)
            else:
                raise Answer(404, {"message": "Not Found"})
        except Answer as answer:
            self._send(answer.status, answer.body, answer.headers)
            return
        self._send(*result)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise Answer(413, {"message": "body too large"})
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def base_url(self) -> str:
        return f"http://{self.headers.get('Host') or HOST}"

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        match = re.fullmatch(r"(?i)(?:bearer|token)\s+(\S+)", value.strip())
        return match.group(1) if match else None


Result = tuple[int, Any, dict[str, str]]


# Slack -------------------------------------------------------------------------------


def _slack(standins: StandIns, handler: _Handler, method: str, raw: bytes) -> Result:
    with standins.lock:
        faults = standins.faults
        if faults.slack_down:
            raise Answer(503, {"ok": False, "error": "service_unavailable"})
        if faults.slack_rate_limited > 0:
            faults.slack_rate_limited -= 1
            raise Answer(
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(faults.slack_retry_after)},
            )
    token = handler.bearer()
    if token is None:
        return _slack_error("not_authed")
    if standins.slack_token is not None and token != standins.slack_token:
        return _slack_error("invalid_auth")
    args = _slack_args(handler.headers.get("Content-Type") or "", raw)
    actions: dict[str, Callable[[StandIns, dict[str, Any]], dict[str, Any]]] = {
        "auth.test": _slack_auth_test,
        "chat.postMessage": _slack_post,
        "chat.update": _slack_update,
    }
    action = actions.get(method)
    if action is None:
        return _slack_error("unknown_method")
    with standins.lock:
        return 200, action(standins, args), {}


def _slack_error(error: str, status: int = 200) -> Result:
    return status, {"ok": False, "error": error}, {}


def _slack_args(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        try:
            value = json.loads(raw)
        except ValueError:
            raise Answer(200, {"ok": False, "error": "invalid_json"}) from None
        if not isinstance(value, dict):
            raise Answer(200, {"ok": False, "error": "invalid_json"})
        return value
    return {k: v[-1] for k, v in parse_qs(raw.decode()).items()}


def _slack_auth_test(standins: StandIns, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": "https://branchenv-local.slack.com/",
        "team": "branchenv local",
        "user": "branchenv",
        "team_id": "T0LOCAL",
        "user_id": "U0BRANCHENV",
        "bot_id": "B0BRANCHENV",
    }


def _slack_post(standins: StandIns, args: dict[str, Any]) -> dict[str, Any]:
    channel = _slack_channel(args)
    text, blocks = _slack_content(args)
    thread_ts = args.get("thread_ts")
    if thread_ts is not None and (channel, str(thread_ts)) not in standins.slack.messages:
        raise Answer(200, {"ok": False, "error": "thread_not_found"})
    ts = standins.slack.next_ts()
    message = {"channel": channel, "ts": ts, "text": text, "blocks": blocks, "replies": []}
    if thread_ts is not None:
        parent = standins.slack.messages[(channel, str(thread_ts))]
        parent["replies"].append({"ts": ts, "text": text, "blocks": blocks})
    else:
        standins.slack.messages[(channel, ts)] = message
    standins.slack.calls.append(
        {
            "method": "chat.postMessage",
            "channel": channel,
            "ts": ts,
            "thread_ts": thread_ts,
            "text": text,
            "blocks": blocks,
            "unfurl": {k: args.get(k) for k in ("unfurl_links", "unfurl_media")},
        }
    )
    return {"ok": True, "channel": channel, "ts": ts, "message": {"text": text, "ts": ts}}


def _slack_update(standins: StandIns, args: dict[str, Any]) -> dict[str, Any]:
    channel = _slack_channel(args)
    ts = str(args.get("ts") or "")
    if not ts:
        raise Answer(200, {"ok": False, "error": "invalid_arguments"})
    message = standins.slack.messages.get((channel, ts))
    if message is None:
        raise Answer(200, {"ok": False, "error": "message_not_found"})
    text, blocks = _slack_content(args)
    message.update(text=text, blocks=blocks)
    standins.slack.calls.append(
        {"method": "chat.update", "channel": channel, "ts": ts, "text": text, "blocks": blocks}
    )
    return {"ok": True, "channel": channel, "ts": ts, "text": text}


def _slack_channel(args: dict[str, Any]) -> str:
    """A channel id, as Slack answers it: names like ``#qa`` map to a stable fake id."""
    channel = str(args.get("channel") or "").strip()
    if not channel:
        raise Answer(200, {"ok": False, "error": "channel_not_found"})
    if re.fullmatch(r"[CGD][A-Z0-9]{8,}", channel):
        return channel
    digest = hashlib.sha256(channel.lstrip("#").encode()).hexdigest()[:10].upper()
    return f"C{digest}"


def _slack_content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = str(args.get("text") or "")
    raw_blocks = args.get("blocks")
    if isinstance(raw_blocks, str):
        try:
            raw_blocks = json.loads(raw_blocks)
        except ValueError:
            raise Answer(200, {"ok": False, "error": "invalid_blocks_format"}) from None
    blocks = raw_blocks or []
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        raise Answer(200, {"ok": False, "error": "invalid_blocks_format"})
    if not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
        raise Answer(200, {"ok": False, "error": "invalid_blocks"})
    if not text and not blocks:
        raise Answer(200, {"ok": False, "error": "no_text"})
    return text, blocks


# GitHub ------------------------------------------------------------------------------


@dataclass
class _GitHubRequest:
    standins: StandIns
    base: str
    repository: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]

    @property
    def state(self) -> GitHubState:
        return self.standins.github

    @property
    def repo_url(self) -> str:
        return f"{self.base}/repos/{self.repository}"


def _github(
    standins: StandIns,
    handler: _Handler,
    method: str,
    path: str,
    query: dict[str, str],
    raw: bytes,
) -> Result:
    if standins.faults.github_down:
        raise Answer(503, {"message": "Service Unavailable"})
    minting = _ACCESS_TOKENS.fullmatch(path)
    if minting is not None and method == "POST":
        return _gh_installation_token(standins, handler, int(minting.group("id")))
    token = handler.bearer()
    if token is None:
        raise Answer(401, {"message": "Requires authentication", "status": "401"})
    if not _token_accepted(standins, token):
        raise Answer(401, {"message": "Bad credentials", "status": "401"})
    for route_method, pattern, action in _GITHUB_ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            body = _json_body(raw) if method == "POST" else {}
            request = _GitHubRequest(
                standins,
                handler.base_url() + GITHUB_PREFIX,
                f"{params['owner']}/{params['name']}",
                params,
                query,
                body,
            )
            with standins.lock:
                if request.repository not in request.state.branches:
                    raise Answer(404, {"message": "Not Found", "status": "404"})
                status, answer, headers = action(request)
            return status, answer, headers
    raise Answer(404, {"message": "Not Found", "status": "404"})


_ACCESS_TOKENS = re.compile(r"/app/installations/(?P<id>\d+)/access_tokens")


def _token_accepted(standins: StandIns, token: str) -> bool:
    """The configured token, or an installation token the stand-in minted and that has not
    expired; any token when neither a token nor an App is configured."""
    with standins.lock:
        expires = standins.github.installation_tokens.get(token)
    if expires is not None:
        return standins.clock() < expires
    if standins.github_token is None and standins.github_app is None:
        return True
    return token == standins.github_token


def _gh_installation_token(standins: StandIns, handler: _Handler, installation_id: int) -> Result:
    """``POST /app/installations/{id}/access_tokens``: a Bearer JWT signed by the App's
    key, for one of its installations, buys a token that lasts ``token_seconds``."""
    app = standins.github_app
    if app is None:
        raise Answer(404, {"message": "Not Found", "status": "404"})
    header = (handler.headers.get("Authorization") or "").strip()
    if not header.lower().startswith("bearer "):
        raise Answer(
            401,
            {"message": "A JSON web token could not be decoded", "status": "401"},
        )
    _check_app_jwt(app, header.split(None, 1)[1].strip())
    if installation_id not in app.installation_ids:
        raise Answer(404, {"message": "Not Found", "status": "404"})
    token = "ghs_" + secrets.token_urlsafe(27)
    expires = standins.clock() + app.token_seconds
    expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
    with standins.lock:
        standins.github.installation_tokens[token] = expires
        standins.github.minted.append(
            {"installation_id": installation_id, "expires_at": expires_at}
        )
    body = {
        "token": token,
        "expires_at": expires_at,
        "permissions": {"contents": "read", "deployments": "write", "metadata": "read"},
        "repository_selection": "all",
    }
    return 201, body, {}


def _check_app_jwt(app: StandInApp, token: str) -> None:
    """What GitHub checks of an App's JWT: it decodes (RS256, signed by the App's key when
    the public key is known), it has not expired, and ``iss`` is the App's id."""
    import jwt

    try:
        if app.public_key is not None:
            claims = jwt.decode(
                token,
                app.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_iss": False},
                leeway=60,
            )
        else:
            claims = jwt.decode(
                token,
                options={"verify_signature": False, "require": ["iat", "exp", "iss"]},
            )
    except jwt.PyJWTError:
        raise Answer(
            401, {"message": "A JSON web token could not be decoded", "status": "401"}
        ) from None
    if str(claims.get("iss")) != str(app.app_id):
        raise Answer(401, {"message": "Integration not found", "status": "401"})


def _gh_repository(request: _GitHubRequest) -> Result:
    return 200, _repository_json(request), {}


def _gh_list_branches(request: _GitHubRequest) -> Result:
    branches = sorted(request.state.branches[request.repository].items())
    items = [_branch_json(request, name, sha) for name, sha in branches]
    return _page(request, items, f"{request.repo_url}/branches")


def _gh_get_branch(request: _GitHubRequest) -> Result:
    branch = request.params["branch"]
    sha = request.state.branches[request.repository].get(branch)
    if sha is None:
        raise Answer(404, {"message": "Branch not found", "status": "404"})
    return 200, _branch_json(request, branch, sha), {}


def _gh_contents(request: _GitHubRequest) -> Result:
    path = request.params["path"].strip("/")
    ref = request.query.get("ref", "*")
    files = request.state.files
    content = files.get((request.repository, path, ref))
    if content is None:
        content = files.get((request.repository, path, "*"))
    if content is None:
        raise Answer(404, {"message": "Not Found", "status": "404"})
    encoded = base64.b64encode(content.encode()).decode()
    blob_sha = hashlib.sha1(f"blob {len(content.encode())}\0{content}".encode()).hexdigest()
    return (
        200,
        {
            "type": "file",
            "encoding": "base64",
            "size": len(content.encode()),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": encoded,
            "sha": blob_sha,
            "url": f"{request.repo_url}/contents/{path}?ref={ref}",
        },
        {},
    )


def _gh_create_deployment(request: _GitHubRequest) -> Result:
    body = request.body
    ref = body.get("ref")
    if not isinstance(ref, str) or not ref:
        raise Answer(422, {"message": "Invalid request. ref is required.", "status": "422"})
    branches = request.state.branches[request.repository]
    sha = branches.get(ref) or (
        ref if ref in request.state.known_shas.get(request.repository, set()) else None
    )
    if sha is None:
        raise Answer(422, {"message": f"No ref found for: {ref}", "status": "422"})
    if body.get("required_contexts") not in ([], None):
        raise Answer(
            409, {"message": "Conflict: required status checks are not known here", "status": "409"}
        )
    deployment_id = next(request.state.ids)
    now = _now()
    deployment = {
        "id": deployment_id,
        "repository": request.repository,
        "sha": sha,
        "ref": ref,
        "task": body.get("task") or "deploy",
        "environment": body.get("environment") or "production",
        "description": body.get("description"),
        "transient_environment": bool(body.get("transient_environment", False)),
        "production_environment": bool(body.get("production_environment", False)),
        "auto_merge": body.get("auto_merge", True),
        "required_contexts": body.get("required_contexts"),
        "payload": body.get("payload") or {},
        "created_at": now,
        "updated_at": now,
        "statuses": [],
    }
    request.state.deployments[deployment_id] = deployment
    return 201, _deployment_json(request, deployment), {}


def _gh_list_deployments(request: _GitHubRequest) -> Result:
    wanted = {
        k: request.query[k] for k in ("sha", "ref", "task", "environment") if k in request.query
    }
    found = [
        d
        for d in sorted(request.state.deployments.values(), key=lambda d: -d["id"])
        if d["repository"] == request.repository and all(d[k] == v for k, v in wanted.items())
    ]
    items = [_deployment_json(request, d) for d in found]
    return _page(request, items, f"{request.repo_url}/deployments")


def _gh_get_deployment(request: _GitHubRequest) -> Result:
    return 200, _deployment_json(request, _deployment(request)), {}


def _gh_list_statuses(request: _GitHubRequest) -> Result:
    deployment = _deployment(request)
    items = [_status_json(request, deployment, s) for s in reversed(deployment["statuses"])]
    return _page(request, items, f"{request.repo_url}/deployments/{deployment['id']}/statuses")


def _gh_create_status(request: _GitHubRequest) -> Result:
    deployment = _deployment(request)
    body = request.body
    state = body.get("state")
    if state not in DEPLOYMENT_STATES:
        raise Answer(
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "DeploymentStatus", "field": "state", "code": "invalid"}],
                "status": "422",
            },
        )
    description = body.get("description") or ""
    if len(description) > 140:
        raise Answer(422, {"message": "description is too long (maximum is 140 characters)"})
    status = {
        "id": next(request.state.ids),
        "state": state,
        "description": description,
        "environment": body.get("environment") or deployment["environment"],
        "environment_url": body.get("environment_url") or "",
        "log_url": body.get("log_url") or body.get("target_url") or "",
        "created_at": _now(),
    }
    deployment["statuses"].append(status)
    deployment["updated_at"] = status["created_at"]
    if state == "success" and body.get("auto_inactive", True):
        _deactivate_others(request, deployment)
    return 201, _status_json(request, deployment, status), {}


def _deactivate_others(request: _GitHubRequest, current: dict[str, Any]) -> None:
    """What GitHub's ``auto_inactive`` does: earlier non-transient, non-production
    deployments of the same environment get an inactive status (transient ones, like
    branchenv's, are left alone)."""
    for other in request.state.deployments.values():
        if (
            other["repository"] == current["repository"]
            and other["environment"] == current["environment"]
            and other["id"] != current["id"]
            and not other["transient_environment"]
            and not other["production_environment"]
            and other["statuses"]
            and other["statuses"][-1]["state"] != "inactive"
        ):
            other["statuses"].append(
                {
                    **other["statuses"][-1],
                    "id": next(request.state.ids),
                    "state": "inactive",
                    "created_at": _now(),
                }
            )


def _deployment(request: _GitHubRequest) -> dict[str, Any]:
    deployment = request.state.deployments.get(int(request.params["id"]))
    if deployment is None or deployment["repository"] != request.repository:
        raise Answer(404, {"message": "Not Found", "status": "404"})
    return deployment


def _page(request: _GitHubRequest, items: list[Any], url: str) -> Result:
    """One page of a list, with GitHub's Link header when there is a next one."""
    per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
    page = max(1, int(request.query.get("page", "1")))
    start = (page - 1) * per_page
    headers: dict[str, str] = {}
    if start + per_page < len(items):
        kept = "".join(
            f"&{k}={v}" for k, v in request.query.items() if k not in ("page", "per_page")
        )
        headers["Link"] = f'<{url}?per_page={per_page}&page={page + 1}{kept}>; rel="next"'
    return 200, items[start : start + per_page], headers


def _user(request: _GitHubRequest) -> dict[str, Any]:
    return {
        "login": "branchenv-bot",
        "id": 1,
        "type": "Bot",
        "url": f"{request.base}/users/branchenv-bot",
    }


def _repository_json(request: _GitHubRequest) -> dict[str, Any]:
    owner, name = request.repository.split("/", 1)
    return {
        "id": int(hashlib.sha256(request.repository.encode()).hexdigest()[:8], 16),
        "name": name,
        "full_name": request.repository,
        "owner": {
            "login": owner,
            "id": 2,
            "type": "Organization",
            "url": f"{request.base}/users/{owner}",
        },
        "private": True,
        "url": request.repo_url,
        "html_url": f"https://github.com/{request.repository}",
        "default_branch": "main",
    }


def _branch_json(request: _GitHubRequest, name: str, sha: str) -> dict[str, Any]:
    return {
        "name": name,
        "commit": {"sha": sha, "url": f"{request.repo_url}/commits/{sha}"},
        "protected": False,
    }


def _deployment_json(request: _GitHubRequest, d: dict[str, Any]) -> dict[str, Any]:
    url = f"{request.repo_url}/deployments/{d['id']}"
    public = {k: v for k, v in d.items() if k not in ("statuses", "repository")}
    return {
        **public,
        "url": url,
        "statuses_url": f"{url}/statuses",
        "repository_url": request.repo_url,
        "creator": _user(request),
        "original_environment": d["environment"],
    }


def _status_json(
    request: _GitHubRequest, deployment: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    url = f"{request.repo_url}/deployments/{deployment['id']}"
    return {
        **status,
        "url": f"{url}/statuses/{status['id']}",
        "target_url": status["log_url"],
        "deployment_url": url,
        "repository_url": request.repo_url,
        "creator": _user(request),
        "updated_at": status["created_at"],
    }


def _public_deployment(d: dict[str, Any]) -> dict[str, Any]:
    return _copy(d)


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    """A deep, JSON-only copy, so callers never share the stand-ins' state."""
    copied: dict[str, Any] = json.loads(json.dumps(value))
    return copied


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_GITHUB_ROUTES: list[tuple[str, re.Pattern[str], Callable[[_GitHubRequest], Result]]] = [
    ("GET", re.compile(_REPO + r"$"), _gh_repository),
    ("GET", re.compile(_REPO + r"/branches$"), _gh_list_branches),
    ("GET", re.compile(_REPO + r"/branches/(?P<branch>.+)$"), _gh_get_branch),
    ("GET", re.compile(_REPO + r"/contents/(?P<path>.+)$"), _gh_contents),
    ("GET", re.compile(_REPO + r"/deployments$"), _gh_list_deployments),
    ("POST", re.compile(_REPO + r"/deployments$"), _gh_create_deployment),
    ("GET", re.compile(_REPO + r"/deployments/(?P<id>\d+)$"), _gh_get_deployment),
    ("GET", re.compile(_REPO + r"/deployments/(?P<id>\d+)/statuses$"), _gh_list_statuses),
    ("POST", re.compile(_REPO + r"/deployments/(?P<id>\d+)/statuses$"), _gh_create_status),
]


# Local controls ----------------------------------------------------------------------


def _local(standins: StandIns, method: str, path: str, raw: bytes) -> Result:
    route = (method, path.rstrip("/"))
    if route == ("GET", "/_local/slack"):
        return 200, standins.slack_record(), {}
    if route == ("GET", "/_local/github"):
        return 200, standins.github_record(), {}
    if route == ("GET", "/_local/faults"):
        with standins.lock:
            return 200, standins.faults.to_json(), {}
    if route == ("PUT", "/_local/faults"):
        body = _json_body(raw)
        with standins.lock:
            standins.faults.update(body)
            return 200, standins.faults.to_json(), {}
    if route in (("PUT", "/_local/github/branches"), ("DELETE", "/_local/github/branches")):
        return _local_branch(standins, method, _json_body(raw))
    if route == ("PUT", "/_local/github/files"):
        body = _json_body(raw)
        repository = _text(body, "repository")
        ref = body.get("ref") or "*"
        standins.set_file(repository, _text(body, "path"), _text(body, "content"), str(ref))
        return 200, {"repository": repository, "path": body["path"], "ref": ref}, {}
    if route == ("POST", "/_local/reap"):
        if standins.reap is None:
            raise Answer(
                501,
                {
                    "error": "no reaper is connected to these stand-ins; "
                    "start them from `branchenv local` to run a reaper pass"
                },
            )
        return 200, standins.reap(), {}
    raise Answer(404, {"error": f"no local control {method} {path}"})


def _local_branch(standins: StandIns, method: str, body: dict[str, Any]) -> Result:
    repository = _text(body, "repository")
    branch = _text(body, "branch")
    if "/" not in repository:
        raise Answer(400, {"error": "repository must look like owner/name"})
    if method == "PUT":
        sha = _text(body, "sha")
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise Answer(400, {"error": "sha must be a full 40-hex commit id"})
        standins.set_branch(repository, branch, sha)
        return 200, {"repository": repository, "branch": branch, "sha": sha}, {}
    existed = standins.delete_branch(repository, branch)
    return 200, {"repository": repository, "branch": branch, "deleted": existed}, {}


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise Answer(
            400, {"error": "the body must be JSON", "message": "Problems parsing JSON"}
        ) from None
    if not isinstance(value, dict):
        raise Answer(400, {"error": "the body must be a JSON object"})
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Answer(400, {"error": f"{key} is required (a non-empty string)"})
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Answer(400, {"error": f"{name} must be a JSON object"})
    return value


def _ecs_fail_shas(value: Any) -> frozenset[str]:
    """``{"fail_shas": ["<40-hex sha>", ...]}``; ``[]`` clears the list."""
    usage = (
        'ecs must be {"fail_shas": [<full 40-hex commit ids>]}; '
        'send {"ecs": {"fail_shas": []}} to clear it'
    )
    if not isinstance(value, dict) or set(value) != {"fail_shas"}:
        raise Answer(400, {"error": usage})
    shas = value["fail_shas"]
    if not isinstance(shas, list):
        raise Answer(400, {"error": f"ecs.fail_shas must be a list; {usage}"})
    for index, sha in enumerate(shas):
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise Answer(
                400,
                {
                    "error": f"ecs.fail_shas[{index}] must be a full 40-hex commit id in "
                    f"lower case, got {sha!r}"
                },
            )
    return frozenset(shas)


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Answer(400, {"error": f"{name} must be a whole number of at least 0"})
    return value
