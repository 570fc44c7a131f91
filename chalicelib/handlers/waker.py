"""The waker: what a sleeping preview's URL answers, and the one way a wake is asked for.

A sleeping environment's listener rule forwards to the load balancer's waker target group,
a Lambda target served by ``app.py``'s ``waker``. :func:`answer` takes the load balancer's
event ("Lambda functions as targets", Elastic Load Balancing User Guide: the request as
``httpMethod``, ``path``, ``headers`` with lower-case names, ``requestContext.elb``) and
returns the response it expects (``statusCode``, ``statusDescription``, ``headers``,
``body``, ``isBase64Encoded``). A person's request asks for a wake and gets a page that
reloads itself; a link-preview bot (Slack's unfurler among them), a HEAD or an OPTIONS
request gets the same page and wakes nothing, so a link pasted into a chat does not start
a preview. The page carries the branch name, escaped, and nothing else from the record:
no secret, no external asset.

:func:`request_wake` is also what the dashboard's wake calls: a converge request with
cause ``wake`` on the branch's queue group; the worker clears the record's ``asleep`` and
converge brings the service back (chalicelib/engine/converge).
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.environments import Environment, EnvironmentStore, Status
from chalicelib.domain.messages import WAKE_CAUSE as WAKE_CAUSE
from chalicelib.domain.messages import ConvergeRequest, Queue
from chalicelib.domain.names import names_of

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
RELOAD_SECONDS = 5
# Requests within this many seconds of each other send one wake: the queue drops a message
# whose deduplication id it saw in the last five minutes ("Exactly-once processing in
# Amazon SQS", FIFO queues), so a page reloading itself every few seconds while the service
# starts costs one converge, not twenty.
WAKE_DEDUP_WINDOW_SECONDS = 30
# Link-preview and crawler user agents (matched case-insensitively as substrings): they get
# the page and never wake a preview. Slack's unfurler says "Slackbot-LinkExpanding"; Teams
# and Skype say "SkypeUriPreview".
BOT_MARKERS = (
    "slackbot",
    "slack-imgproxy",
    "skypeuripreview",
    "microsoft office",
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "mattermost",
    "googlebot",
    "bingbot",
    "applebot",
    "embedly",
    "redditbot",
    "pinterest",
    "bot/",
    "crawler",
    "spider",
)
NEVER_WAKE_METHODS = frozenset({"HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WakerDeps:
    """What the waker reads and writes: the records, the queue, and the domain."""

    store: EnvironmentStore
    queue: Queue
    app_name: str
    preview_domain: str
    clock: Callable[[], float] = time.time


def is_bot(user_agent: str | None) -> bool:
    """Whether a user agent is a known link-preview bot or crawler."""
    agent = (user_agent or "").lower()
    return any(marker in agent for marker in BOT_MARKERS)


def request_wake(queue: Queue, env: Environment, *, now: float) -> None:
    """Ask the worker to wake ``env``: one converge request per window of
    :data:`WAKE_DEDUP_WINDOW_SECONDS` (the queue drops the repeats)."""
    request = ConvergeRequest(slug=env.slug, cause=WAKE_CAUSE)
    window = int(now // WAKE_DEDUP_WINDOW_SECONDS)
    queue.send(
        request.to_message(),
        group_id=env.slug,  # EnvironmentNames.queue_group_id: the slug
        dedup_id=f"wake-{env.slug}-{window}",
    )


def answer(event: Mapping[str, Any], deps: WakerDeps) -> dict[str, Any]:
    """The load balancer's response to one request that reached the waker."""
    headers = event.get("headers") or {}
    host = _host(headers.get("host"))
    try:
        env = _environment_at(host, deps)
    except Exception as exc:  # the records could not be read: a page, never a 502
        log.warning("could not read the record for %s (%s)", host, type(exc).__name__)
        body = _page("Try again", "This preview could not be looked up just now.", reload=True)
        return _response(503, body, retry_after=RETRY_AFTER_SECONDS)
    if env is None or not env.is_live or env.status == Status.DELETING:
        return _response(404, _page("No preview here", "No preview answers at this address."))
    method = str(event.get("httpMethod") or "GET").upper()
    wakes = method not in NEVER_WAKE_METHODS and not is_bot(headers.get("user-agent"))
    if wakes and (env.asleep or env.status == Status.SLEEPING):
        try:
            request_wake(deps.queue, env, now=deps.clock())
        except Exception as exc:  # the page still answers; its next reload asks again
            log.warning("%s: could not ask for a wake (%s)", env.slug, type(exc).__name__)
    branch = html.escape(env.branch)
    body = _page(
        f"Waking up {branch}",
        f"The preview of <strong>{branch}</strong> was asleep and is waking up. "
        f"This page reloads itself in {RELOAD_SECONDS} seconds; it usually takes about a "
        "minute.",
        reload=True,
    )
    return _response(503, body, retry_after=RETRY_AFTER_SECONDS)


def _host(raw: Any) -> str:
    """The request's host, lower case, without a port."""
    return str(raw or "").split(":", 1)[0].strip().rstrip(".").lower()


def _environment_at(host: str, deps: WakerDeps) -> Environment | None:
    suffix = "." + deps.preview_domain.lower().rstrip(".")
    if not host.endswith(suffix):
        return None
    slug = host[: -len(suffix)]
    if not slug or "." in slug:
        return None
    env = deps.store.get(slug)
    if env is None or names_of(env, deps.app_name, deps.preview_domain).host.lower() != host:
        return None
    return env


_STATUS_TEXT = {404: "404 Not Found", 503: "503 Service Unavailable"}


def _response(status: int, body: str, *, retry_after: int | None = None) -> dict[str, Any]:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex",
    }
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return {
        "statusCode": status,
        "statusDescription": _STATUS_TEXT[status],
        "headers": headers,
        "body": body,
        "isBase64Encoded": False,
    }


def _page(title: str, message: str, *, reload: bool = False) -> str:
    """A small self-contained page: inline style, no script, no external asset."""
    refresh = f'<meta http-equiv="refresh" content="{RELOAD_SECONDS}">' if reload else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta name="viewport" content="width=device-width">{refresh}'
        f"<title>{title}</title><style>body{{font:16px system-ui,sans-serif;margin:15vh auto;"
        "max-width:32em;padding:0 1em;color:#222}h1{font-size:1.4em}</style></head>"
        f"<body><h1>{title}</h1><p>{message}</p></body></html>"
    )
