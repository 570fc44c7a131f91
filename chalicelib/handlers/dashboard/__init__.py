"""The QA dashboard: one HTML page and a small JSON API over the environment records.

The routes in ``app.py`` call :func:`page`, :func:`environments`, :func:`environment` and
:func:`wake` with a :class:`Request` and turn the :class:`Answer` into a response. This
package is the dashboard's one front door; its parts, by responsibility:

- :mod:`~chalicelib.handlers.dashboard.answers`: the Request and Answer types and the HTTP headers;
- :mod:`~chalicelib.handlers.dashboard.views`: pure views of a record (preview URL, JSON, times);
- :mod:`~chalicelib.handlers.dashboard.html_page`: the HTML page and error page, escaped throughout;
  the page's markup, CSS and one script are the template file ``page.html`` (package data);
- :mod:`~chalicelib.handlers.dashboard.access`: who may look (``BRANCHENV_DASHBOARD_AUTH``) and
  which keys are accepted;
- :mod:`~chalicelib.handlers.dashboard.service`: :class:`Dashboard`, which checks access, reads an
  :class:`~chalicelib.domain.environments.EnvironmentStore` and answers, and the route entry points.

The dashboard never writes a record, never echoes a key, and puts nothing from a record on
the page unescaped: branch names are user input. Only http(s) links are rendered. The one
thing it asks for is a wake of a sleeping preview (``POST /api/environments/{slug}/wake``,
the same access rules as reading): a converge request on the work queue, exactly what a
request to the preview's URL sends; the page's one inline script, allowed by its hash in the
Content-Security-Policy, sends it from the Wake button of a sleeping row.
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
    page_headers,
)
from chalicelib.handlers.dashboard.html_page import (
    REFRESH_SECONDS,
    SLEEPING_TEXT,
    page_script_hashes,
    render_page,
)
from chalicelib.handlers.dashboard.service import (
    Dashboard,
    dashboard_for,
    environment,
    environments,
    page,
    wake,
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
    "SLEEPING_TEXT",
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
    "page_headers",
    "page_script_hashes",
    "preview_url",
    "render_page",
    "wake",
]
