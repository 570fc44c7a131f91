"""The dashboard's HTTP vocabulary: the request it reads, the answer it gives, its headers.

``app.py`` turns a Chalice request into a :class:`Request` and an :class:`Answer` back into a
Chalice response; everything else in the dashboard speaks only these two types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
COMMON_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The page may carry ?key=; never let it leak to a preview through the Referer.
    "Referrer-Policy": "no-referrer",
}


def page_headers(script_hashes: Iterable[str] = ()) -> dict[str, str]:
    """The headers of an HTML answer. Its Content-Security-Policy loads nothing: inline
    style, and only the inline scripts whose hashes are given (CSP Level 2 hash sources,
    ``'sha256-<base64>'``), which may call back to this origin (``connect-src 'self'``:
    the page's Wake button); nothing else runs, so a branch named ``<script>`` cannot."""
    scripts = " ".join(f"'{digest}'" for digest in script_hashes)
    script_policy = f"script-src {scripts}; connect-src 'self'; " if scripts else ""
    return {
        **COMMON_HEADERS,
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; {script_policy}base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'"
        ),
    }


# An HTML answer that runs no script at all (the error page).
PAGE_HEADERS = page_headers()


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
