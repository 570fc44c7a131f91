"""The dashboard's HTML: the page listing live environments, and a bare error page.

The page's markup, CSS and script are the template file ``page.html`` beside this module; this
module renders the rows and fills the template's placeholders.

Every value taken from a record is escaped (:func:`escape`): branch names are user input.
Links go through :func:`~chalicelib.handlers.dashboard.views.safe_link`, so only http(s)
ones render.

A sleeping row gets a Wake button; the template's one inline script sends it (``POST
/api/environments/{slug}/wake``), and :func:`page_script_hashes` gives the page's
Content-Security-Policy that script's hash, so it is the only script that can run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from string import Template

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Settings
from chalicelib.handlers.dashboard.views import human_duration, iso_time, preview_url, safe_link

REFRESH_SECONDS = 15
SLEEPING_TEXT = "sleeping: wakes on the first request"
# The page itself: standard-library string.Template placeholders ($app, ${body}...), so its
# CSS keeps its own braces. Every value substituted is already escaped HTML.
PAGE_TEMPLATE = "page.html"


def render_page(envs: Sequence[Environment], settings: Settings, now: float) -> str:
    """The whole HTML page listing ``envs``; every value from a record is escaped."""
    rows = "\n".join(_row(env, settings, now) for env in envs)
    if envs:
        body = _TABLE.substitute(rows=rows)
    else:
        body = '<p class="empty">No live environments. Push a branch to create one.</p>'
    count = f"{len(envs)} live environment" + ("" if len(envs) == 1 else "s")
    return page_template().substitute(
        refresh=REFRESH_SECONDS,
        app=escape(settings.app_name),
        count=count,
        generated=escape(_clock_time(now)),
        generated_iso=escape(iso_time(now) or ""),
        body=body,
    )


def _row(env: Environment, settings: Settings, now: float) -> str:
    url = preview_url(env, settings)
    cells = [
        (
            "Branch",
            f'<span class="branch">{escape(env.branch)}</span>'
            f'<span class="repo">{escape(env.repository)}</span>',
        ),
        ("Preview", _link(url, url, css="preview")),
        ("Status", _status_cell(env)),
        ("Commit", _commit_cell(env)),
        ("Pushed by", escape(env.pusher) if env.pusher else _NONE),
        ("Last deploy", _time_cell(env.ready_at, now)),
        ("Age", escape(human_duration(now - env.created_at)) if env.created_at else _NONE),
    ]
    tds = "".join(f'<td data-label="{label}"><div>{content}</div></td>' for label, content in cells)
    return (
        f'<tr data-slug="{escape(env.slug)}" class="status-{escape(env.status.value)}">{tds}</tr>'
    )


def _status_cell(env: Environment) -> str:
    badge = f'<span class="badge {escape(env.status.value)}">{escape(env.status.value)}</span>'
    if env.status is Status.SLEEPING:
        return badge + _wake_controls(env)
    if env.status is not Status.FAILED:
        return badge
    reason = env.reason or "no reason was recorded; see the deploy logs"
    logs = _link(env.log_url, "logs") if safe_link(env.log_url) else ""
    return f'{badge}<span class="reason">{escape(reason)}</span>{logs}'


def _wake_controls(env: Environment) -> str:
    """What a sleeping row says, and its Wake button (the page's script sends it)."""
    return (
        f'<span class="sleep-note">{SLEEPING_TEXT}</span>'
        f'<button type="button" class="wake" data-wake="{escape(env.slug)}" '
        f'aria-label="Wake {escape(env.branch)}">Wake</button>'
        '<span class="wake-note" role="status"></span>'
    )


def _commit_cell(env: Environment) -> str:
    short = env.short_sha
    if not short:
        return _NONE
    return _link(env.commit_url, short, css="sha") or f'<span class="sha">{escape(short)}</span>'


def _time_cell(timestamp: float | None, now: float) -> str:
    if not timestamp:
        return _NONE
    ago = human_duration(now - timestamp)
    return (
        f'<time datetime="{escape(iso_time(timestamp) or "")}">'
        f'{escape(_clock_time(timestamp))}</time><span class="ago">{escape(ago)} ago</span>'
    )


def _link(href: str | None, text: str, *, css: str = "") -> str:
    safe = safe_link(href)
    if safe is None:
        return ""
    klass = f' class="{css}"' if css else ""
    return f'<a{klass} href="{escape(safe)}" rel="noopener noreferrer">{escape(text)}</a>'


def _clock_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def escape(text: str) -> str:
    """``text`` safe inside HTML, attribute values included."""
    return html.escape(text, quote=True)


_NONE = '<span class="none">&ndash;</span>'

_TABLE = Template("""<table>
<thead><tr><th>Branch</th><th>Preview</th><th>Status</th><th>Commit</th><th>Pushed by</th>
<th>Last deploy</th><th>Age</th></tr></thead>
<tbody>
$rows
</tbody>
</table>""")


@cache
def page_template() -> Template:
    """``page.html``, shipped beside this module (package data in the wheel, a file in the
    Chalice deployment zip), read once per process."""
    page = resources.files("chalicelib.handlers.dashboard").joinpath(PAGE_TEMPLATE)
    text = page.read_text(encoding="utf-8")
    return Template(text)


_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache
def page_script_hashes() -> tuple[str, ...]:
    """The CSP hash source (``sha256-<base64>``) of each inline script in ``page.html``:
    the digest of the exact text between ``<script>`` and ``</script>`` ("Content Security
    Policy Level 2", hash-source). The scripts hold no template placeholder, so the page
    serves them exactly as the template has them."""
    hashes = []
    for match in _SCRIPT.finditer(page_template().template):
        digest = hashlib.sha256(match.group(1).encode("utf-8")).digest()
        hashes.append("sha256-" + base64.b64encode(digest).decode("ascii"))
    return tuple(hashes)


def error_page(status: int, message: str) -> str:
    """A minimal page that says why the dashboard could not answer; ``message`` is escaped."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>branchenv: {status}</title></head><body><p>{escape(message)}</p></body></html>"
    )
