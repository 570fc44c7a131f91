"""Slack: one message per environment, updated in place, and a threaded line per deploy.

The message is posted when an environment is first seen and then changed with
``chat.update`` (the stored ``ts``) as it moves building → deploying → ready / failed →
deleted, and ready ⇄ sleeping (the URL stays on the message: its first request wakes
it). Each later deploy of the same branch adds a threaded reply. A call is made only
when what the message shows changed (a hash of the blocks is kept), so a repeated
converge makes no Slack call.

No message of branchenv's unfurls a link: every ``chat.postMessage`` passes
``unfurl_links=False`` and ``unfurl_media=False`` (Slack API, chat.postMessage arguments;
``chat.update`` takes neither, so the post is where they are set). A preview link is never
fetched for a preview card, so posting one does not wake a sleeping preview or load a
page nobody asked for (the waker also never wakes for Slack's unfurler).

Must never: put a secret, token or environment variable value in a message (only the
branch, the pusher, the commit, the status, the failure reason with tokens redacted, and
links); raise past the dispatcher; import slack_sdk at module import time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.domain.environments import Environment, Status
from chalicelib.notify import STATUS_LABELS, current_sha, redact

if TYPE_CHECKING:
    from slack_sdk import WebClient

TIMEOUT_SECONDS = 10
MAX_RATE_LIMIT_WAIT = 10
MAX_REASON_CHARS = 500
KEEP_LIVE_SHAS = 20
SLEEPING_DETAIL = "Sleeping, wakes on the first request"
STATUS_EMOJI = {
    Status.PENDING: ":hourglass_flowing_sand:",
    Status.BUILDING: ":hammer_and_wrench:",
    Status.DEPLOYING: ":rocket:",
    Status.READY: ":white_check_mark:",
    Status.SLEEPING: ":zzz:",
    Status.FAILED: ":x:",
    Status.DELETING: ":wastebasket:",
    Status.DELETED: ":wastebasket:",
}
# The statuses whose preview URL answers: ready, and sleeping (its first request wakes it).
SERVING = frozenset({Status.READY, Status.SLEEPING})


def slack_client(
    token: str,
    base_url: str,
    *,
    timeout: int = TIMEOUT_SECONDS,
    rate_limit_retries: int = 2,
    max_rate_limit_wait: int = MAX_RATE_LIMIT_WAIT,
) -> WebClient:
    """A WebClient that honours 429 Retry-After (waiting at most ``max_rate_limit_wait``
    seconds; a longer wait is left to the next converge) and retries connection errors
    and 5xx once."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            _bounded_rate_limit_handler(rate_limit_retries, max_rate_limit_wait),
            ServerErrorRetryHandler(max_retry_count=1),
        ],
    )


def _bounded_rate_limit_handler(retries: int, max_wait: int) -> Any:
    """slack-sdk's RateLimitErrorRetryHandler, declining waits longer than ``max_wait``."""
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
        def _can_retry(self, *, response: Any = None, **others: Any) -> bool:
            if not super()._can_retry(response=response, **others):
                return False
            values = {k.lower(): v for k, v in response.headers.items()}.get("retry-after", ["1"])
            try:
                return int(values[0]) <= max_wait
            except ValueError:
                return False

    return BoundedRateLimitRetryHandler(max_retry_count=retries)


def post_message(web: WebClient, channel: str, text: str, **fields: Any) -> Any:
    """``chat.postMessage`` that never unfurls a link (see the module docstring)."""
    return web.chat_postMessage(
        channel=channel, text=text, unfurl_links=False, unfurl_media=False, **fields
    )


class SlackError(Exception):
    """Slack refused a call or could not be reached; the message says which and why."""


class SlackNotifier:
    """Keeps one Slack message per environment in step with it (a notify Channel)."""

    name = "slack"

    def __init__(
        self,
        client_factory: Callable[[], WebClient],
        channel_for: Callable[[Environment], str | None],
        url_for: Callable[[Environment], str],
    ) -> None:
        self._client_factory = client_factory
        self._client: WebClient | None = None
        self._channel_for = channel_for
        self._url_for = url_for

    def sync(self, env: Environment, state: dict[str, Any]) -> None:
        """Post, update and reply as needed; record ts, channel, hash and live shas."""
        if state.get("status") == Status.DELETED.value and env.status != Status.DELETED:
            state.clear()  # the branch was created again: a new message, not the old one
        if "ts" not in state:
            channel = self._channel_for(env)
            if channel is None or env.status == Status.DELETED:
                return  # no channel, or gone before anyone was told: nothing to say
            self._post(env, channel, state)
        else:
            self._update(env, state)
        self._announce_live(env, state)
        if "ts" in state:
            state["status"] = env.status.value

    def alert(self, channel: str, text: str) -> None:
        """Post a plain alert (no environment message to update); SlackError on failure."""
        safe = redact(text)
        self._call("chat.postMessage", lambda web: post_message(web, channel, safe))

    def _post(self, env: Environment, channel: str, state: dict[str, Any]) -> None:
        text, blocks = self._message(env)
        answer = self._call(
            "chat.postMessage",
            lambda web: post_message(web, channel, text, blocks=blocks),
        )
        state.update(channel=answer["channel"], ts=answer["ts"], hash=_digest(text, blocks))

    def _update(self, env: Environment, state: dict[str, Any]) -> None:
        text, blocks = self._message(env)
        digest = _digest(text, blocks)
        if state.get("hash") == digest:
            return
        self._call(
            "chat.update",
            lambda web: web.chat_update(
                channel=state["channel"], ts=state["ts"], text=text, blocks=blocks
            ),
        )
        state["hash"] = digest

    def _announce_live(self, env: Environment, state: dict[str, Any]) -> None:
        sha = env.deployed_sha
        if env.status != Status.READY or not sha:
            return
        live: list[str] = state.setdefault("live_shas", [])
        if sha in live:
            return
        if live:  # the first deploy is told by the message itself; later ones in its thread
            self._call(
                "chat.postMessage",
                lambda web: post_message(
                    web, state["channel"], live_line(env), thread_ts=state["ts"]
                ),
            )
        live.append(sha)
        del live[:-KEEP_LIVE_SHAS]

    def _message(self, env: Environment) -> tuple[str, list[dict[str, Any]]]:
        serves = env.status in SERVING or still_serving(env) is not None
        url = self._url_for(env) if serves else None
        return summary_text(env, url), message_blocks(env, url)

    def _call(self, method: str, action: Callable[[WebClient], Any]) -> dict[str, Any]:
        """Run one Web API call; SlackError (with Slack's error code, never the token)
        if Slack refused it or could not be reached after the retry handlers gave up."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        if self._client is None:
            self._client = self._client_factory()
        try:
            answer = action(self._client)
        except SlackApiError as exc:
            code = exc.response.get("error", "unknown_error")
            status = exc.response.status_code
            raise SlackError(f"Slack {method} answered {status}: {code}") from exc
        except (SlackClientError, OSError) as exc:
            raise SlackError(f"Slack {method} could not be reached: {type(exc).__name__}") from exc
        return dict(answer.data) if isinstance(answer.data, dict) else {}


def still_serving(env: Environment) -> str | None:
    """The commit that still serves the preview although the wanted one failed: the last
    one that became ready (``deployed_sha``) when it is not the failed one. With rollback
    on, "when a service deployment fails, the service is rolled back to the last
    deployment that completed successfully" (ECS API Reference, DeploymentCircuitBreaker),
    and a failed build never replaced it."""
    if env.status != Status.FAILED or not env.deployed_sha:
        return None
    return env.deployed_sha if env.deployed_sha != env.desired_sha else None


def summary_text(env: Environment, url: str | None) -> str:
    """The plain-text fallback Slack shows in notifications."""
    text = f"{env.branch} ({env.repository}): {STATUS_LABELS[env.status].lower()}"
    if url and env.status == Status.READY:
        text += f", {url}"
    if url and env.status == Status.SLEEPING:
        text += f", wakes on the first request, {url}"
    if env.status in (Status.FAILED, Status.DELETED) and env.reason:
        text += f": {_reason(env.reason)}"
    previous = still_serving(env)
    if previous and url:
        text += f" ({previous[:7]} still serves at {url})"
    return text


def message_blocks(env: Environment, url: str | None) -> list[dict[str, Any]]:
    """The Block Kit message for ``env`` (``url`` once it is ready, while it sleeps, or
    while a previous commit still serves after a failed one)."""
    from slack_sdk.models.blocks import (
        ActionsBlock,
        ButtonElement,
        ContextBlock,
        MarkdownTextObject,
        SectionBlock,
    )

    label = STATUS_LABELS[env.status]
    blocks: list[Any] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"{STATUS_EMOJI[env.status]} *{_escape(env.branch)}* is {label.lower()}"
            ),
            fields=[
                MarkdownTextObject(text=f"*Repository*\n{_escape(env.repository)}"),
                MarkdownTextObject(text=f"*Pushed by*\n{_pusher(env)}"),
                MarkdownTextObject(text=f"*Commit*\n{_commit_link(env)}"),
                MarkdownTextObject(text=f"*Status*\n{_status_detail(env)}"),
            ],
        )
    ]
    if env.status == Status.FAILED:
        reason = _escape(_reason(env.reason or "no reason was recorded"))
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Why it failed*\n{reason}")))
        previous = still_serving(env)
        if previous and url:
            failed = f"`{(env.desired_sha or '')[:7]}`"
            serving = (
                f":leftwards_arrow_with_hook: {failed} was not deployed: the previous commit "
                f"`{previous[:7]}` still serves at <{url}|{_escape(url)}>."
            )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=serving)))
    buttons = []
    if url:
        buttons.append(
            ButtonElement(text="Open preview", url=url, action_id="open_preview", style="primary")
        )
    if env.status == Status.FAILED and env.log_url:
        buttons.append(ButtonElement(text="Open logs", url=env.log_url, action_id="open_logs"))
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    if env.status == Status.SLEEPING and url:
        asleep = (
            ":zzz: Nobody opened it for a while, so it was scaled to zero. Opening "
            f"<{url}|{_escape(url)}> wakes it: a page that reloads itself shows until it "
            "serves again."
        )
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=asleep)]))
    if env.status == Status.DELETED:
        # The reaper says why (idle past its TTL: push again to bring it back); a webhook
        # delete has no reason of its own.
        why = (
            _escape(_reason(env.reason))
            if env.reason
            else ("The branch is gone; its environment was removed.")
        )
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=why)]))
    return [block.to_dict() for block in blocks]


def live_line(env: Environment) -> str:
    """The threaded reply for a later deploy: ``abc1234 by @dev is live, 74 s``."""
    sha = (env.deployed_sha or "")[:7]
    by = f" by @{_escape(env.pusher)}" if env.pusher else ""
    took = f", {env.ready_seconds[-1]:.0f} s" if env.ready_seconds else ""
    return f"{sha}{by} is live{took}"


def _status_detail(env: Environment) -> str:
    detail = STATUS_LABELS[env.status]
    if env.status == Status.READY and env.ready_seconds:
        detail = f"Ready in {env.ready_seconds[-1]:.0f} s"
    if env.status == Status.SLEEPING:
        detail = SLEEPING_DETAIL
    if env.spot_interruptions and env.status in (Status.READY, Status.DEPLOYING):
        # ECS replaces an interrupted Fargate Spot task by itself; people see it happened.
        times = "once" if env.spot_interruptions == 1 else f"{env.spot_interruptions} times"
        detail += f" (Spot task interrupted {times}, replaced by ECS)"
    return detail


def _pusher(env: Environment) -> str:
    return f"@{_escape(env.pusher)}" if env.pusher else "unknown"


def _commit_link(env: Environment) -> str:
    sha = current_sha(env)
    if not sha:
        return "none yet"
    if env.commit_url and sha == env.desired_sha:
        return f"<{env.commit_url}|`{sha[:7]}`>"
    return f"`{sha[:7]}`"


def _reason(reason: str) -> str:
    text = redact(reason)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _digest(text: str, blocks: list[dict[str, Any]]) -> str:
    body = json.dumps({"text": text, "blocks": blocks}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]
