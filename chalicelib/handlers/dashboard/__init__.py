"""The QA dashboard: one HTML page and a small JSON API over the environment records.

The routes in ``app.py`` call :func:`page`, :func:`environments` and :func:`environment`
with a :class:`Request` and turn the :class:`Answer` into a response. This package is the
dashboard's one front door; its parts, by responsibility:

- :mod:`~chalicelib.handlers.dashboard.answers`: the Request and Answer types and the HTTP headers;
- :mod:`~chalicelib.handlers.dashboard.views`: pure views of a record (preview URL, JSON, times);
- :mod:`~chalicelib.handlers.dashboard.html_page`: the HTML page and error page, escaped throughout;
  the page's markup and CSS are the template file ``page.html`` (package data);
- :mod:`~chalicelib.handlers.dashboard.access`: who may look (``BRANCHENV_DASHBOARD_AUTH``) and
  which keys are accepted;
- :mod:`~chalicelib.handlers.dashboard.service`: :class:`Dashboard`, which checks access, reads an
  :class:`~chalicelib.domain.environments.EnvironmentStore` and answers, and the route entry points.

The dashboard never writes a record, never echoes a key, and puts nothing from a record on
the page unescaped: branch names are user input. Only http(s) links are rendered.
"""

from __future__ import annotations

from chalicelib.handlers.dashboard.access import Access, KeySource
from chalicelib.handlers.dashboard.answers import (
    COMMON_HEADERS,
    HTML_TYPE,
    JSON_TYPE,
    PAGE_HEADERS,
    Answer,
    Request,
)
from chalicelib.handlers.dashboard.html_page import REFRESH_SECONDS, render_page
from chalicelib.handlers.dashboard.service import (
    Dashboard,
    dashboard_for,
    environment,
    environments,
    page,
)
from chalicelib.handlers.dashboard.views import (
    environment_json,
    human_duration,
    iso_time,
    preview_url,
)

__all__ = [
    "COMMON_HEADERS",
    "HTML_TYPE",
    "JSON_TYPE",
    "PAGE_HEADERS",
    "REFRESH_SECONDS",
    "Access",
    "Answer",
    "Dashboard",
    "KeySource",
    "Request",
    "dashboard_for",
    "environment",
    "environment_json",
    "environments",
    "human_duration",
    "iso_time",
    "page",
    "preview_url",
    "render_page",
]
