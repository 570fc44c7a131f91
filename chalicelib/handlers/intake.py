"""The webhook intake: verify, parse, enqueue, answer, in milliseconds.

Called by the ``POST /github/webhook`` route. It makes no AWS call but the enqueue and no
GitHub call, and it imports nothing heavy (no PyGithub, no slack-sdk): GitHub gives up on
a webhook after 10 seconds and does not retry. A refused request changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.aws.errors import AwsError
from chalicelib.domain.messages import BranchEvent, Queue
from chalicelib.domain.names import names_for
from chalicelib.handlers import webhooks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeConfig:
    """What the intake needs to know, and nothing more."""

    app_name: str
    preview_domain: str
    preview_scheme: str
    allowed_repositories: frozenset[str]
    max_body_bytes: int
    secrets: Callable[[], Sequence[str]]
    # The installation's preview URL for a host (Settings.preview_url), so the answer shows
    # the URL everything else shows; without it, scheme://host.
    preview_url: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to GitHub: a status code and a small JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def receive(headers: Mapping[str, str], body: bytes, config: IntakeConfig, queue: Queue) -> Answer:
    """Answer one webhook delivery; enqueue a BranchEvent only for an accepted one.

    ``headers`` must look names up case-insensitively (Chalice's request headers do).
    """
    if len(body) > config.max_body_bytes:
        return Answer(413, {"error": f"payload larger than {config.max_body_bytes} bytes"})
    signature = headers.get("x-hub-signature-256")
    if not signature:
        return Answer(
            401, {"error": "missing X-Hub-Signature-256 header; set a secret on the GitHub webhook"}
        )
    if not webhooks.verify_signature(body, signature, config.secrets()):
        return Answer(401, {"error": "signature does not match; check the webhook secret"})
    event = headers.get("x-github-event")
    delivery_id = headers.get("x-github-delivery")
    if not event or not delivery_id:
        return Answer(400, {"error": "missing X-GitHub-Event or X-GitHub-Delivery header"})
    try:
        payload = json.loads(body)
        repository = webhooks.repository_of(payload)
        if (
            repository is not None
            and config.allowed_repositories
            and repository not in config.allowed_repositories
        ):
            return Answer(
                403,
                {
                    "error": f"repository {repository} is not in this "
                    f"installation's allowed repositories"
                },
            )
        outcome = webhooks.parse(event, payload, delivery_id)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and MalformedPayload
        reason = str(exc) if isinstance(exc, webhooks.MalformedPayload) else "body is not JSON"
        return Answer(400, {"error": f"not a GitHub {event} payload: {reason}"})
    if isinstance(outcome, webhooks.Ping):
        return Answer(200, {"ok": True, "zen": outcome.zen})
    if isinstance(outcome, webhooks.Ignored):
        return Answer(200, {"ignored": True, "reason": outcome.reason})
    return _enqueue(outcome, config, queue)


def _enqueue(event: BranchEvent, config: IntakeConfig, queue: Queue) -> Answer:
    names = names_for(config.app_name, event.repository, event.branch, config.preview_domain)
    try:
        queue.send(event.to_message(), group_id=names.queue_group_id, dedup_id=event.delivery_id)
    except AwsError as exc:
        log.error("could not enqueue delivery %s: %s", event.delivery_id, exc)
        return Answer(
            503,
            {
                "error": "could not queue the event; redeliver it from the "
                "webhook's Recent Deliveries page"
            },
        )
    log.info("accepted %s for %s@%s as %s", event.event, event.repository, event.branch, names.slug)
    return Answer(
        202,
        {
            "accepted": True,
            "environment": names.slug,
            "desired": event.desired,
            "url": (
                config.preview_url(names.host)
                if config.preview_url
                else f"{config.preview_scheme}://{names.host}"
            ),
        },
    )
