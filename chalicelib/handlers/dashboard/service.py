"""The dashboard service: answers its three routes from an EnvironmentStore, read-only.

:class:`Dashboard` checks :class:`~chalicelib.handlers.dashboard.access.Access` first, then
reads the store and answers with the HTML page or JSON. The routes in ``app.py`` call :func:`page`,
:func:`environments` and :func:`environment`, which keep one Dashboard per warm Runtime.
This module never writes a record.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.domain.environments import EnvironmentStore, StoreError
from chalicelib.domain.names import MAX_LABEL
from chalicelib.domain.settings import Settings
from chalicelib.handlers.dashboard.access import Access, KeySource
from chalicelib.handlers.dashboard.answers import (
    COMMON_HEADERS,
    HTML_TYPE,
    JSON_TYPE,
    PAGE_HEADERS,
    Answer,
    Request,
)
from chalicelib.handlers.dashboard.html_page import error_page, render_page
from chalicelib.handlers.dashboard.views import environment_json

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime

_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


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
    return Answer(status, error_page(status, message), _html_headers())


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
