"""The dashboard's HTML: the page listing live environments, and a bare error page.

Every value taken from a record is escaped (:func:`escape`): branch names are user input.
Links go through :func:`~chalicelib.handlers.dashboard.views.safe_link`, so only http(s)
ones render.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib.domain.environments import Environment, Status
from chalicelib.domain.settings import Settings
from chalicelib.handlers.dashboard.views import human_duration, iso_time, preview_url, safe_link

REFRESH_SECONDS = 15


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
    if env.status is not Status.FAILED:
        return badge
    reason = env.reason or "no reason was recorded; see the deploy logs"
    logs = _link(env.log_url, "logs") if safe_link(env.log_url) else ""
    return f'{badge}<span class="reason">{escape(reason)}</span>{logs}'


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


def error_page(status: int, message: str) -> str:
    """A minimal page that says why the dashboard could not answer; ``message`` is escaped."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>branchenv: {status}</title></head><body><p>{escape(message)}</p></body></html>"
    )
