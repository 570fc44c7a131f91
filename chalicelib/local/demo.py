"""The scripted story ``branchenv demo`` plays against a freshly started local stack.

Two branches are created, one is pushed again, one is deleted, all through signed
webhooks over HTTP, exactly as GitHub would send them (and the GitHub stand-in is told
about each branch first, as GitHub itself would know it). Each step is printed with its
timing, the preview URLs, the first line each preview serves through the local load
balancer (the deleted one's URL answers the listener's 404) and the Slack messages it
caused; the story ends with an audit that nothing in AWS (moto) still belongs to the
deleted branch. Any step that does not reach its expected state in time fails the demo.
It must never touch anything but the local stack it was given.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from chalicelib.domain.names import names_for
from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import Reply, build_delivery, fake_sha, send, set_branch

REPOSITORY = "octo-org/shop"
FIRST_BRANCH = "feature/login"
SECOND_BRANCH = "fix/checkout-total"
SETTLED = ("ready", "failed")
GONE = ("deleted",)


class DemoFailed(Exception):
    """A step did not end as expected; the message says which and what was seen."""


@dataclass
class Story:
    """Prints the story as it happens and remembers what failed."""

    stack: LocalStack
    out: TextIO
    timeout: float = 30.0
    started: float = field(default_factory=time.monotonic)
    slack_seen: int = 0

    # --- what a person reads ---------------------------------------------------------------

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", file=self.out, flush=True)

    def detail(self, text: str) -> None:
        print(f"         {text}", file=self.out, flush=True)

    # --- what GitHub does --------------------------------------------------------------------

    def push(self, branch: str, sha: str, before: str | None = None) -> None:
        stack = self.stack
        set_branch(stack.stub_url, REPOSITORY, branch, sha, exists=True)
        delivery = build_delivery(
            "push", repository=REPOSITORY, branch=branch, sha=sha, before=before
        )
        self._expect_accepted(send(self.webhook_url, delivery, self.secret), "push", branch)

    def delete(self, branch: str) -> None:
        set_branch(self.stack.stub_url, REPOSITORY, branch, "0" * 40, exists=False)
        delivery = build_delivery("delete", repository=REPOSITORY, branch=branch)
        self._expect_accepted(send(self.webhook_url, delivery, self.secret), "delete", branch)

    def _expect_accepted(self, reply: Reply, event: str, branch: str) -> None:
        answer = reply.json() or {}
        if reply.status != 202:
            raise DemoFailed(
                f"the intake answered {reply.status} to {event} {branch}: {reply.body}"
            )
        self.detail(f"webhook {event} {branch}: HTTP 202, environment {answer.get('environment')}")

    @property
    def webhook_url(self) -> str:
        return f"{self.stack.app_url}/github/webhook"

    @property
    def secret(self) -> str:
        return self.stack.options.webhook_secret

    # --- what QA sees ----------------------------------------------------------------------------

    def environment(self, slug: str) -> dict[str, Any] | None:
        """``GET /api/environments/{slug}``; None while there is no such environment."""
        try:
            with urllib.request.urlopen(f"{self.stack.app_url}/api/environments/{slug}") as r:
                record: dict[str, Any] = json.loads(r.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise DemoFailed(f"the dashboard API answered {error.code} for {slug}") from None
        inner = record.get("environment", record)
        return inner if isinstance(inner, dict) else record

    def wait_for(
        self, slug: str, wanted: tuple[str, ...], check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        seen: list[str] = []
        record: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            record = self.environment(slug)
            status = str(record.get("status")) if record else "absent"
            if not seen or seen[-1] != status:
                seen.append(status)
            if record is not None and status in wanted and check(record):
                self.detail(f"{slug}: {' -> '.join(seen)}")
                return record
            time.sleep(0.2)
        reason = f" ({record.get('reason')})" if record and record.get("reason") else ""
        raise DemoFailed(
            f"{slug} did not become {' or '.join(wanted)} within {self.timeout:.0f}s; "
            f"seen: {' -> '.join(seen)}{reason}"
        )

    def open_preview(self, url: str, expected: int, wanted: str = "") -> str:
        """Fetch ``url`` through the local load balancer until it answers ``expected``
        (with ``wanted`` in its first line); print and return that first line."""
        deadline = time.monotonic() + self.timeout
        status, line = fetch_preview(url)
        while (status != expected or wanted not in line) and time.monotonic() < deadline:
            time.sleep(0.2)
            status, line = fetch_preview(url)
        self.detail(f"GET {url} -> {status}: {line[:110]}")
        if status != expected or wanted not in line:
            raise DemoFailed(f"{url} answered {status} ({line[:80]}), expected {expected}")
        return line

    def slack_news(self) -> None:
        """Print the Slack calls made since the last look (posts and in-place updates)."""
        with urllib.request.urlopen(f"{self.stack.stub_url}/_local/slack") as answer:
            calls = json.loads(answer.read()).get("calls", [])
        for call in calls[self.slack_seen :]:
            verb = "posted" if call.get("method") == "chat.postMessage" else "updated"
            text = " ".join(str(call.get("text", "")).split())
            self.detail(f"slack {verb} in {call.get('channel', '')}: {text[:100]}")
        if len(calls) == self.slack_seen:
            self.detail("slack: nothing new")
        self.slack_seen = len(calls)


def play(stack: LocalStack, out: TextIO, *, timeout: float = 30.0) -> None:
    """Play the story against a started stack; raise DemoFailed at the first broken step."""
    story = Story(stack, out, timeout=timeout)
    first = _slug(stack, FIRST_BRANCH)
    second = _slug(stack, SECOND_BRANCH)
    first_sha, second_sha, third_sha = (fake_sha(f"demo:{n}") for n in range(3))

    story.say(f"1. developers push two new branches: {FIRST_BRANCH}, {SECOND_BRANCH}")
    story.push(FIRST_BRANCH, first_sha)
    story.push(SECOND_BRANCH, second_sha)
    for slug, sha in ((first, first_sha), (second, second_sha)):
        record = story.wait_for(slug, SETTLED, lambda r: True)
        _expect_ready(record, slug, sha)
        story.detail(f"{slug}: ready at {record.get('url')} (sha {sha[:7]})")
        story.open_preview(str(record.get("url")), 200, sha)
    story.slack_news()

    story.say(f"2. a new commit is pushed to {FIRST_BRANCH}")
    story.push(FIRST_BRANCH, third_sha, before=first_sha)
    record = story.wait_for(first, SETTLED, lambda r: r.get("sha") == third_sha)
    _expect_ready(record, first, third_sha)
    story.detail(f"{first}: ready again at {record.get('url')} (sha {third_sha[:7]})")
    story.open_preview(str(record.get("url")), 200, third_sha)
    story.slack_news()

    story.say(f"3. {SECOND_BRANCH} is merged and deleted")
    story.delete(SECOND_BRANCH)
    gone = story.wait_for(second, GONE, lambda r: True)
    story.open_preview(str(gone.get("url")), 404)
    story.slack_news()

    story.say(f"4. audit: nothing in AWS still belongs to {second}")
    leftovers = audit(stack, second)
    if leftovers:
        raise DemoFailed(f"{second} still has AWS resources: {', '.join(leftovers)}")
    story.detail(f"{second}: no service, task definition, target group, rule, DNS record or tag")
    kept = audit(stack, first)
    kinds = sorted({line.split(" ", 1)[0] for line in kept})
    story.detail(f"{first}: still live with {len(kept)} resources ({', '.join(kinds)})")
    story.say("the story is complete")


def fetch_preview(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """GET ``url`` as a browser does on this machine (``*.localhost`` is loopback): its
    status and the text of the first line it serves, tags left out."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers={"Host": parts.netloc})
        answer = connection.getresponse()
        body = answer.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, f"no answer ({type(exc).__name__})"
    finally:
        connection.close()
    first = body.splitlines()[0] if body else ""
    return answer.status, " ".join(re.sub(r"<[^>]*>", " ", first).split())


def audit(stack: LocalStack, slug: str) -> list[str]:
    """What AWS (moto) and the store still hold for ``slug``: ``kind identifier`` lines."""
    inventory = stack.runtime.inventory
    return [f"{resource.kind} {resource.identifier}" for resource in inventory.managed(slug)]


def _slug(stack: LocalStack, branch: str) -> str:
    settings = stack.runtime.settings
    return names_for(settings.app_name, REPOSITORY, branch, settings.preview_domain).slug


def _expect_ready(record: dict[str, Any], slug: str, sha: str) -> None:
    if record.get("status") != "ready":
        raise DemoFailed(f"{slug} failed: {record.get('reason') or 'no reason given'}")
    if record.get("sha") != sha:
        raise DemoFailed(f"{slug} is ready at sha {record.get('sha')}, expected {sha}")
