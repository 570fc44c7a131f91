"""The dashboard service: answers its routes from an EnvironmentStore, read-only.

:class:`Dashboard` checks :class:`~chalicelib.handlers.dashboard.access.Access` first, then
reads the store and answers with the HTML page or JSON. The routes in ``app.py`` call
:func:`page`, :func:`environments`, :func:`environment` and :func:`wake`, which keep one
Dashboard per warm Runtime.

This module never writes a record. Waking a sleeping preview is the one thing the dashboard
asks for: :meth:`Dashboard.wake` puts the same converge request on the work queue that a
request to the preview's URL does (:func:`chalicelib.handlers.waker.request_wake`), with the
same access rules as reading; the worker clears the record's ``asleep`` and converge brings
the service back.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.aws.errors import AwsError
from chalicelib.domain.environments import Environment, EnvironmentStore, Status, StoreError
from chalicelib.domain.messages import Queue
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
    page_headers,
)
from chalicelib.handlers.dashboard.html_page import error_page, page_script_hashes, render_page
from chalicelib.handlers.dashboard.views import environment_json
from chalicelib.handlers.waker import request_wake

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime

_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class Dashboard:
    """Answers the dashboard routes from an EnvironmentStore; reads, never writes, and asks
    for a wake on the work queue (``queue``: called on the first wake, so reading never
    makes an SQS client; None: this dashboard cannot wake, and says so)."""

    def __init__(
        self,
        store: EnvironmentStore,
        settings: Settings,
        access: Access,
        clock: Callable[[], float] = time.time,
        *,
        queue: Callable[[], Queue] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._access = access
        self._clock = clock
        self._queue = queue

    def page(self, request: Request) -> Answer:
        refused = self._access.refusal(request)
        if refused:
            return _html_error(*refused)
        try:
            envs = self._store.live()
        except StoreError:
            return _html_error(503, _STORE_DOWN)
        page = render_page(envs, self._settings, self._clock())
        headers = {**page_headers(page_script_hashes()), "Content-Type": HTML_TYPE}
        return Answer(200, page, headers)

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

    def wake(self, request: Request, slug: str) -> Answer:
        """Ask for a sleeping environment to wake: 202 once the request is on the queue,
        404 for no live environment of that slug, 409 for one that is not asleep."""
        refused = self._access.refusal(request)
        if refused:
            return _json_error(*refused)
        try:
            env = self._store.get(slug) if _is_slug(slug) else None
        except StoreError:
            return _json_error(503, _STORE_DOWN)
        if env is None or not env.is_live:
            return _json_error(
                404, f"no live environment {slug!r}; GET /api/environments lists the live ones"
            )
        if not _wakeable(env):
            return _json(
                409,
                {
                    "error": f"{slug!r} is {env.status.value}, not sleeping: only a sleeping "
                    "preview can be woken",
                    "status": env.status.value,
                },
            )
        if self._queue is None:
            return _json_error(503, "this dashboard has no work queue to send a wake to")
        try:
            request_wake(self._queue(), env, now=self._clock())
        except AwsError:
            return _json_error(503, "the wake could not be queued; try again in a minute")
        view = environment_json(env, self._settings)
        message = (
            f"waking up {env.branch}: it usually serves again within a minute, "
            f"and {view['url']} shows a page that reloads itself meanwhile"
        )
        return _json(202, {"wake": "requested", "message": message, "environment": view})


def _wakeable(env: Environment) -> bool:
    """Asleep, or on its way there (the reaper set ``asleep`` and converge has not finished
    the sleep yet), and not being deleted: the same test the waker makes."""
    if env.status is Status.DELETING:
        return False
    return env.asleep or env.status is Status.SLEEPING


_STORE_DOWN = "the environment records could not be read; try again in a minute"


def _is_slug(text: str) -> bool:
    return len(text) <= MAX_LABEL and bool(_SLUG.match(text))


def _json(status: int, body: dict[str, Any]) -> Answer:
    return Answer(status, json.dumps(body), {**COMMON_HEADERS, "Content-Type": JSON_TYPE})


def _json_error(status: int, message: str) -> Answer:
    return _json(status, {"error": message})


def _html_error(status: int, message: str) -> Answer:
    return Answer(status, error_page(status, message), {**PAGE_HEADERS, "Content-Type": HTML_TYPE})


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


def wake(deps: Runtime, request: Request, slug: str) -> Answer:
    """``POST /api/environments/{slug}/wake``: wake a sleeping preview; 202, 404 or 409."""
    return dashboard_for(deps).wake(request, slug)


@functools.lru_cache(maxsize=4)
def dashboard_for(deps: Runtime) -> Dashboard:
    """The Dashboard of one Runtime, kept while the process is warm (the key is cached);
    the Runtime's work queue is made on the first wake, not for a read."""
    return Dashboard(
        deps.store,
        deps.settings,
        Access(deps.settings.dashboard_auth, KeySource(deps)),
        queue=lambda: deps.queue,
    )
