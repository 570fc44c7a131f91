"""The QA dashboard: one HTML page and a small JSON API over the environment records.

Pure functions turn :class:`Environment` records into JSON and HTML; :class:`Dashboard`
reads an :class:`EnvironmentStore`, decides who may look (``BRANCHENV_DASHBOARD_AUTH``)
and answers. The routes in ``app.py`` call :func:`page`, :func:`environments` and
:func:`environment`.

Access is checked here, at request time, because Chalice fixes a route's authorizer when it
packages the app and the mode is a runtime setting:
- ``none``: open (the local stack);
- ``api_key``: the ``X-Api-Key`` header or ``?key=`` must equal one of the dashboard keys
  (settings, else the Secrets Manager secret), compared in constant time;
- ``iam``: API Gateway must have authenticated an IAM caller (AWS_IAM authorization on the
  methods); a request without a caller identity is refused, so a missing authorizer fails
  closed.

This module never writes a record, never echoes a key, and puts nothing from a record on
the page unescaped: branch names are user input. Only http(s) links are rendered.
"""

from __future__ import annotations

import functools
import hmac
import html
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.aws.errors import AwsError
from chalicelib.environments import Environment, EnvironmentStore, Status, StoreError
from chalicelib.names import MAX_LABEL, names_for
from chalicelib.settings import Settings, SettingsError

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime

REFRESH_SECONDS = 15
_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_SAFE_LINK = re.compile(r"^https?://", re.IGNORECASE)

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
COMMON_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The page may carry ?key=; never let it leak to a preview through the Referer.
    "Referrer-Policy": "no-referrer",
}
PAGE_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}


@dataclass(frozen=True)
class Request:
    """What the dashboard needs from an HTTP request; header names are case-insensitive."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body text and headers."""

    status: int
    body: str
    headers: Mapping[str, str]


# ---------------------------------------------------------------- pure views


def preview_url(env: Environment, settings: Settings) -> str:
    """The URL QA opens for ``env`` (the same host the routing rule and DNS record use)."""
    names = names_for(settings.app_name, env.repository, env.branch, settings.preview_domain)
    return settings.preview_url(names.host)


def iso_time(timestamp: float | None) -> str | None:
    """ISO-8601 in UTC, or None for a time that was never set (0 or None)."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def human_duration(seconds: float) -> str:
    """A short, rounded-down duration people read at a glance: 45s, 12m, 3h 5m, 2d 4h."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def environment_json(env: Environment, settings: Settings) -> dict[str, Any]:
    """The public view of one record: what QA and scripts need, no internal ARNs."""
    reason = env.reason
    if env.status is Status.FAILED and not reason:
        reason = "no reason was recorded; see the deploy logs"
    return {
        "repository": env.repository,
        "branch": env.branch,
        "slug": env.slug,
        "url": preview_url(env, settings),
        "status": env.status.value,
        "reason": reason,
        "sha": env.desired_sha or env.deployed_sha,
        "deployed_sha": env.deployed_sha,
        "commit_url": _safe_link(env.commit_url),
        "log_url": _safe_link(env.log_url),
        "pusher": env.pusher,
        "created_at": iso_time(env.created_at),
        "updated_at": iso_time(env.updated_at),
        "ready_at": iso_time(env.ready_at),
    }


def render_page(envs: Sequence[Environment], settings: Settings, now: float) -> str:
    """The whole HTML page listing ``envs``; every value from a record is escaped."""
    rows = "\n".join(_row(env, settings, now) for env in envs)
    if envs:
        body = _TABLE.format(rows=rows)
    else:
        body = '<p class="empty">No live environments. Push a branch to create one.</p>'
    count = f"{len(envs)} live environment" + ("" if len(envs) == 1 else "s")
    return _PAGE.format(
        refresh=REFRESH_SECONDS,
        app=_e(settings.app_name),
        count=count,
        generated=_e(_clock_time(now)),
        generated_iso=_e(iso_time(now) or ""),
        body=body,
    )


def _row(env: Environment, settings: Settings, now: float) -> str:
    url = preview_url(env, settings)
    cells = [
        (
            "Branch",
            f'<span class="branch">{_e(env.branch)}</span>'
            f'<span class="repo">{_e(env.repository)}</span>',
        ),
        ("Preview", _link(url, url, css="preview")),
        ("Status", _status_cell(env)),
        ("Commit", _commit_cell(env)),
        ("Pushed by", _e(env.pusher) if env.pusher else _NONE),
        ("Last deploy", _time_cell(env.ready_at, now)),
        ("Age", _e(human_duration(now - env.created_at)) if env.created_at else _NONE),
    ]
    tds = "".join(f'<td data-label="{label}"><div>{content}</div></td>' for label, content in cells)
    return f'<tr data-slug="{_e(env.slug)}" class="status-{_e(env.status.value)}">{tds}</tr>'


def _status_cell(env: Environment) -> str:
    badge = f'<span class="badge {_e(env.status.value)}">{_e(env.status.value)}</span>'
    if env.status is not Status.FAILED:
        return badge
    reason = env.reason or "no reason was recorded; see the deploy logs"
    logs = _link(env.log_url, "logs") if _safe_link(env.log_url) else ""
    return f'{badge}<span class="reason">{_e(reason)}</span>{logs}'


def _commit_cell(env: Environment) -> str:
    short = env.short_sha
    if not short:
        return _NONE
    return _link(env.commit_url, short, css="sha") or f'<span class="sha">{_e(short)}</span>'


def _time_cell(timestamp: float | None, now: float) -> str:
    if not timestamp:
        return _NONE
    ago = human_duration(now - timestamp)
    return (
        f'<time datetime="{_e(iso_time(timestamp) or "")}">'
        f'{_e(_clock_time(timestamp))}</time><span class="ago">{_e(ago)} ago</span>'
    )


def _link(href: str | None, text: str, *, css: str = "") -> str:
    safe = _safe_link(href)
    if safe is None:
        return ""
    klass = f' class="{css}"' if css else ""
    return f'<a{klass} href="{_e(safe)}" rel="noopener noreferrer">{_e(text)}</a>'


def _safe_link(href: str | None) -> str | None:
    """``href`` if it is an http(s) URL; never a javascript: or data: link."""
    return href if href and _SAFE_LINK.match(href) else None


def _clock_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_NONE = '<span class="none">&ndash;</span>'

_TABLE = """<table>
<thead><tr><th>Branch</th><th>Preview</th><th>Status</th><th>Commit</th><th>Pushed by</th>
<th>Last deploy</th><th>Age</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="{refresh}">
<title>{app} previews</title>
<style>
:root {{ color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; }}
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; padding: 1rem; max-width: 72rem; }}
h1 {{ font-size: 1.3rem; margin: 0 0 .25rem; }}
.meta, .repo, .ago, .none {{ color: var(--muted); font-size: .85rem; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
th, td {{ text-align: left; padding: .5rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }}
th {{ font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }}
.branch {{ font-weight: 600; word-break: break-all; display: block; }}
.repo, .ago, .reason {{ display: block; }}
a {{ color: #2563eb; word-break: break-all; }}
.sha {{ font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: nowrap;
  word-break: normal; }}
.badge {{ display: inline-block; padding: .05rem .5rem; border-radius: 999px;
  font-size: .8rem; font-weight: 600; background: #e5e7eb; color: #111827; }}
.badge.ready {{ background: #dcfce7; color: #166534; }}
.badge.failed {{ background: #fee2e2; color: #991b1b; }}
.badge.building, .badge.deploying, .badge.pending {{ background: #fef9c3; color: #854d0e; }}
.badge.deleting {{ background: #e0e7ff; color: #3730a3; }}
.reason {{ color: #b91c1c; font-size: .85rem; margin-top: .2rem; }}
.empty {{ margin-top: 2rem; color: var(--muted); }}
@media (max-width: 640px) {{
  body {{ padding: .75rem; }}
  thead {{ display: none; }}
  table, tbody, tr, td {{ display: block; width: 100%; box-sizing: border-box; }}
  tr {{ border: 1px solid var(--line); border-radius: .5rem; margin-bottom: .75rem;
    padding: .25rem 0; }}
  td {{ border: 0; display: flex; gap: .75rem; padding: .3rem .75rem; }}
  td::before {{ content: attr(data-label); flex: 0 0 6.5rem; color: var(--muted);
    font-size: .8rem; }}
  td > div {{ flex: 1; min-width: 0; overflow-wrap: anywhere; }}
}}
</style>
</head>
<body>
<h1>{app} previews</h1>
<p class="meta">{count} · updated <time datetime="{generated_iso}">{generated}</time>
 · refreshes every {refresh}s</p>
{body}
</body>
</html>
"""


# ---------------------------------------------------------------- access


class Access:
    """Decides whether a request may read the dashboard (see the module docstring)."""

    def __init__(self, mode: str, keys: Callable[[], Sequence[str]]) -> None:
        self._mode = mode
        self._keys = keys

    def refusal(self, request: Request) -> tuple[int, str] | None:
        """None if the request may look; else (status, what to do next)."""
        if self._mode == "none":
            return None
        if self._mode == "iam":
            return None if _iam_caller(request.context) else (403, _IAM_REFUSED)
        presented = request.headers.get("x-api-key") or request.query.get("key") or ""
        try:
            keys = self._keys()
        except (SettingsError, AwsError, ValueError):
            return 503, "the dashboard key could not be read; try again in a minute"
        if not keys:
            return 503, _NO_KEY
        if not presented or not _matches_any(presented, keys):
            return 401, _KEY_REFUSED
        return None


_IAM_REFUSED = (
    "this dashboard needs AWS IAM authentication (BRANCHENV_DASHBOARD_AUTH=iam); "
    "sign the request with SigV4, and make sure the API's methods use AWS_IAM authorization"
)
_KEY_REFUSED = (
    "a dashboard key is needed: add ?key=<dashboard key> to the URL or send the "
    "X-Api-Key header; ask whoever runs branchenv for the key"
)
_NO_KEY = (
    "BRANCHENV_DASHBOARD_AUTH is api_key but no key is configured: set "
    "BRANCHENV_DASHBOARD_API_KEY_ARN (or BRANCHENV_DASHBOARD_API_KEY)"
)


def _iam_caller(context: Mapping[str, Any]) -> bool:
    identity = context.get("identity") or {}
    return bool(isinstance(identity, Mapping) and identity.get("userArn"))


def _matches_any(presented: str, keys: Sequence[str]) -> bool:
    given = presented.encode("utf-8")
    # Compare against every key, without stopping early, so timing says nothing.
    results = [hmac.compare_digest(given, key.encode("utf-8")) for key in keys]
    return any(results)


# ---------------------------------------------------------------- service


class Dashboard:
    """Answers the dashboard routes from an EnvironmentStore; reads, never writes."""

    def __init__(
        self,
        store: EnvironmentStore,
        settings: Settings,
        access: Access,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._access = access
        self._clock = clock

    def page(self, request: Request) -> Answer:
        refused = self._access.refusal(request)
        if refused:
            return _html_error(*refused)
        try:
            envs = self._store.live()
        except StoreError:
            return _html_error(503, _STORE_DOWN)
        return Answer(200, render_page(envs, self._settings, self._clock()), _html_headers())

    def environments(self, request: Request) -> Answer:
        refused = self._access.refusal(request)
        if refused:
            return _json_error(*refused)
        try:
            envs = self._store.live()
        except StoreError:
            return _json_error(503, _STORE_DOWN)
        views = [environment_json(env, self._settings) for env in envs]
        return _json(200, {"environments": views})

    def environment(self, request: Request, slug: str) -> Answer:
        refused = self._access.refusal(request)
        if refused:
            return _json_error(*refused)
        try:
            env = self._store.get(slug) if _is_slug(slug) else None
        except StoreError:
            return _json_error(503, _STORE_DOWN)
        if env is None:
            return _json_error(
                404, f"no environment {slug!r}; GET /api/environments lists the live ones"
            )
        return _json(200, environment_json(env, self._settings))


_STORE_DOWN = "the environment records could not be read; try again in a minute"


def _is_slug(text: str) -> bool:
    return len(text) <= MAX_LABEL and bool(_SLUG.match(text))


def _json(status: int, body: dict[str, Any]) -> Answer:
    return Answer(status, json.dumps(body), {**COMMON_HEADERS, "Content-Type": JSON_TYPE})


def _json_error(status: int, message: str) -> Answer:
    return _json(status, {"error": message})


def _html_headers() -> dict[str, str]:
    return {**PAGE_HEADERS, "Content-Type": HTML_TYPE}


def _html_error(status: int, message: str) -> Answer:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>branchenv: {status}</title></head><body><p>{_e(message)}</p></body></html>"
    )
    return Answer(status, body, _html_headers())


# ---------------------------------------------------------------- entry points for app.py


def page(deps: Runtime, request: Request) -> Answer:
    """``GET /``: the HTML page of live environments."""
    return dashboard_for(deps).page(request)


def environments(deps: Runtime, request: Request) -> Answer:
    """``GET /api/environments``: every live environment (failed ones included) as JSON."""
    return dashboard_for(deps).environments(request)


def environment(deps: Runtime, request: Request, slug: str) -> Answer:
    """``GET /api/environments/{slug}``: one record, deleted ones included; 404 otherwise."""
    return dashboard_for(deps).environment(request, slug)


@functools.lru_cache(maxsize=4)
def dashboard_for(deps: Runtime) -> Dashboard:
    """The Dashboard of one Runtime, kept while the process is warm (the key is cached)."""
    return Dashboard(
        deps.store, deps.settings, Access(deps.settings.dashboard_auth, KeySource(deps))
    )


class KeySource:
    """The accepted dashboard keys: from settings, else the Secrets Manager secret.

    A secret may hold one key or a JSON list of keys (during rotation). A successful read
    is cached for the life of the process; a failed one is retried on the next request.
    """

    def __init__(self, deps: Runtime) -> None:
        self._deps = deps
        self._cached: tuple[str, ...] | None = None

    def __call__(self) -> tuple[str, ...]:
        settings = self._deps.settings
        if settings.dashboard_api_keys:
            return settings.dashboard_api_keys
        if not settings.dashboard_api_key_arn:
            return ()
        if self._cached is None:
            self._cached = self._read(settings.dashboard_api_key_arn)
        return self._cached

    def _read(self, arn: str) -> tuple[str, ...]:
        from chalicelib.aws.secrets import SecretValues
        from chalicelib.runtime import parse_secret_list

        value = SecretValues(self._deps.clients.client("secretsmanager")).get(arn)
        return parse_secret_list(value)
