"""The dashboard's HTTP vocabulary: the request it reads, the answer it gives, its headers.

``app.py`` turns a Chalice request into a :class:`Request` and an :class:`Answer` back into a
Chalice response; everything else in the dashboard speaks only these two types.
"""

from __future__ import annotations

from collections.abc import Mapping
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
