"""Issue 13's figures counted black-box on the local stack: every request the moto server
receives, recorded, per stage and per operation.

The real local stack (chalicelib/local/stack.py with the end-to-end tests' options: free
ports, no scheduled sweep; but time 30x faster and a 1.5 s build, see TIME_FACTOR) in
``build`` image mode, driven over HTTP as the end-to-end tests drive it: the GitHub
stand-in is told the branch moved, then the signed webhook is sent; each webhook is
followed until the worker has finished its message and the AWS events' that follow it, the
environment has the status expected, and no request of branchenv's has arrived for a second.

Requests are recorded at the server by moto's own recorder (moto/moto_api/_internal/
recorder: each request moto's Flask app dispatches, headers and body, appended in arrival
order; started and read through ``/moto-api/recorder/...``): no change to the stack and no
hook in any client. A request counts when its User-Agent carries branchenv's marker
(``branchenv/<version>``, chalicelib/aws/clients.py); the stand-ins' (``branchenv-local/
<role>``, chalicelib/local/agents.py), among them the pump's ReceiveMessage/DeleteMessage
that play Lambda's SQS event source, and this script's own reads (``branchenv-bench``) are
listed apart, not counted.

Stages are told from the recording alone. Each starts with the SendMessage that queues its
message (the intake's for a webhook, an event handler's for a build or a deployment; the
body says which), and its worker run ends with the pump's DeleteMessage of that message: one
message group, so the runs are one at a time, in order. A stage is its SendMessage plus
branchenv's other requests between the previous DeleteMessage and its own (retries after a
wait included). Time alone cannot split them: ECS's deployment completes about a second
after the build's converge, while that converge may still be writing.

GitHub knows a created branch's head, so the create event already builds and deploys it;
push 1, which ``git push -u`` sends with the create, brings the same sha.

    .venv/bin/python bench/lifecycle_calls_local.py [--log]
    .venv/bin/python bench/lifecycle_calls.py --local-stack   (the same)
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# moto's recorder reads where to write when moto.moto_api is first imported (by the server).
RECORDING = Path(tempfile.mkdtemp(prefix="branchenv-bench-")) / "moto_recording"
os.environ["MOTO_RECORDER_FILEPATH"] = str(RECORDING)

import botocore.session  # noqa: E402
from lifecycle_calls import print_stage  # noqa: E402

from chalicelib.aws.clients import USER_AGENT  # noqa: E402
from chalicelib.aws.dynamodb import DynamoEnvironmentStore  # noqa: E402
from chalicelib.domain.environments import Environment  # noqa: E402
from chalicelib.local.agents import STAND_IN  # noqa: E402
from chalicelib.local.stack import LocalStack  # noqa: E402
from chalicelib.tools.commands.webhook import (  # noqa: E402
    Reply,
    build_delivery,
    fake_sha,
    send,
    set_branch,
)
from tests.e2e.conftest import REPOSITORY, SECRET, delete, push, slug_of, stack_options  # noqa: E402

BRANCH = "feature/bench"
# AWS's order of events, 30x faster: a build (45 s) outlasts a new rule's propagation (15 s,
# so the first CreateService is not refused), and a teardown's DeleteTargetGroup comes
# sooner after its DeleteRule than the 15 s AWS keeps the group in use (so it is refused
# once and the worker waits, as on AWS). At the end-to-end tests' 300x the 50 ms window
# is about as long as DeleteService takes, and the delete's figure depends on the race.
TIME_FACTOR = 30
BUILD_SECONDS = 1.5
BENCH_AGENT = "branchenv-bench/observer"
QUIET_SECONDS = 1.0  # no request of branchenv's for this long: the stage is over
WAIT_SECONDS = 60.0
STAGES_OF = {"create": "create event", "delete": "delete event", "push": "push"}
CAUSES = {"image built": "build succeeded", "deployment completed": "deployment completed"}
MARKER = re.compile(r"(?:^|\s)(branchenv(?:-[a-z]+)?)/([\w.-]+)")
SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
SERVICES = ("dynamodb", "ecs", "elbv2", "route53", "ecr", "sqs", "codebuild", "events")
OTHERS = ("secretsmanager", "resourcegroupstaggingapi", "ec2", "iam", "logs", "sts")


@dataclass(frozen=True)
class Request:
    """One request the moto server received: who sent it and which operation it was."""

    agent: str  # "branchenv", "branchenv-local/<role>", "branchenv-bench/...", or "unmarked"
    operation: str  # "<service>:<Operation>", as botocore names them
    body: dict[str, Any]  # a JSON body, or a form body's fields; {} otherwise

    @property
    def ours(self) -> bool:
        return self.agent == "branchenv"


class Operations:
    """Names a recorded request's operation from botocore's service models: the signing
    name in its Authorization header, then X-Amz-Target (JSON), Action (query) or the
    method and path (REST: Route53)."""

    def __init__(self) -> None:
        session = botocore.session.get_session()
        self._services: dict[str, Any] = {}
        self._rest: dict[str, list[tuple[str, re.Pattern[str], str]]] = {}
        for name in SERVICES + OTHERS:
            model = session.get_service_model(name)
            self._services[model.signing_name] = model
            if model.protocol.startswith("rest"):
                self._rest[name] = [
                    _route(model.operation_model(op)) for op in model.operation_names
                ]

    def name(self, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        headers = {k.lower(): str(v) for k, v in entry.get("headers", {}).items()}
        scope = SCOPE.search(headers.get("authorization", ""))
        model = self._services.get(scope.group(1)) if scope else None
        service = model.service_name if model is not None else (scope.group(1) if scope else "?")
        raw = entry.get("body") or ""
        text = (
            base64.b64decode(raw).decode("utf-8", "replace") if entry.get("body_encoded") else raw
        )
        body: dict[str, Any] = {}
        if "x-amz-target" in headers:
            body = json.loads(text or "{}")
            return f"{service}:{headers['x-amz-target'].rsplit('.', 1)[-1]}", body
        if "x-www-form-urlencoded" in headers.get("content-type", ""):
            body = dict(urllib.parse.parse_qsl(text))
            return f"{service}:{body.get('Action', '?')}", body
        path = urllib.parse.urlsplit(str(entry.get("url", ""))).path
        for method, pattern, operation in self._rest.get(service, []):
            if method == entry.get("method") and pattern.fullmatch(path):
                return f"{service}:{operation}", body
        return f"{service}:{entry.get('method')} {path}", body


def _route(operation: Any) -> tuple[str, re.Pattern[str], str]:
    uri = str(operation.http["requestUri"]).split("?", 1)[0]
    pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(uri))
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern).rstrip("/") + "/?"
    return str(operation.http["method"]), re.compile(pattern), str(operation.name)


def agent_of(user_agent: str) -> str:
    """Whose request it was, by the last marker in its User-Agent."""
    found = MARKER.findall(user_agent)
    if not found:
        return "unmarked"
    family, role = found[-1]
    return "branchenv" if f"{family}/{role}" == USER_AGENT else f"{family}/{role}"


class Recording:
    """moto's recorder on the stack's server, read through its HTTP controls."""

    def __init__(self, aws_url: str) -> None:
        self._url = f"{aws_url}/moto-api/recorder"
        self._operations = Operations()

    def _control(self, action: str) -> bytes:
        request = urllib.request.Request(f"{self._url}/{action}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return bytes(answer.read())

    def restart(self) -> None:
        self._control("reset-recording")
        self._control("start-recording")

    def requests(self) -> list[Request]:
        return [
            Request(agent_of(str(_header(entry, "user-agent"))), *self._operations.name(entry))
            for entry in _entries(self._control("download-recording").decode())
        ]


def _header(entry: dict[str, Any], name: str) -> str:
    return next((str(v) for k, v in entry.get("headers", {}).items() if k.lower() == name), "")


def _entries(text: str) -> Iterator[dict[str, Any]]:
    """The recorder's JSON objects in order. It appends each one and then its newline in two
    writes from the server's request threads, so a newline may land late: read objects,
    not lines."""
    decoder, at = json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return
        entry, at = decoder.raw_decode(text, at)
        yield entry


def stage_of(request: Request, queue_url: str) -> str | None:
    """The stage a branchenv SendMessage to the work queue starts, from its message."""
    if request.operation != "sqs:SendMessage" or request.body.get("QueueUrl") != queue_url:
        return None
    message = json.loads(str(request.body.get("MessageBody", "{}")))
    if message.get("type") == "branch":
        return STAGES_OF.get(str(message.get("event")), str(message.get("event")))
    return CAUSES.get(str(message.get("cause")), str(message.get("cause")))


def finished(request: Request, queue_url: str) -> bool:
    """Whether this is Lambda's event source (the pump) deleting a work queue message after
    the worker finished with it."""
    return (
        request.agent == f"{STAND_IN}/pump"
        and request.operation == "sqs:DeleteMessage"
        and request.body.get("QueueUrl") == queue_url
    )


@dataclass
class Stage:
    """branchenv's requests in one stage, and how many of them each worker run made (a run
    that waits ends with its ChangeMessageVisibility; the message comes back for the next)."""

    label: str
    calls: Counter[str]
    runs: list[int]


def split_stages(requests: list[Request], queue_url: str) -> list[Stage]:
    """branchenv's requests per stage, in order (see the module docstring)."""
    stages: list[Stage] = []
    invocation = 0
    pushes = 0
    for request in requests:
        if finished(request, queue_url):
            invocation += 1
        if not request.ours:
            continue
        label = stage_of(request, queue_url)
        if label is not None:
            if label == "push":
                pushes += 1
                label = f"push {pushes}"
            stages.append(Stage(label, Counter({request.operation: 1}), [1]))
            continue
        while invocation >= len(stages):  # a request before its stage's message: not expected
            stages.append(Stage("(no message)", Counter(), [0]))
        stage = stages[invocation]
        stage.calls[request.operation] += 1
        stage.runs[-1] += 1
        if request.operation == "sqs:ChangeMessageVisibility":
            stage.runs.append(0)
    if invocation != len(stages):
        print(f"warning: {len(stages)} messages queued but {invocation} finished")
    return stages


class Driver:
    """Sends the webhooks, and waits until the worker has finished and the stack is quiet."""

    def __init__(self, stack: LocalStack, recording: Recording) -> None:
        assert stack.clients is not None and stack.infra is not None
        self.stack, self.recording, self.queue_url = stack, recording, stack.infra.queue_url
        observer = stack.clients.with_user_agent(BENCH_AGENT).client("dynamodb")
        self.store = DynamoEnvironmentStore(observer, stack.infra.table_name)
        self.invocations = 0

    def run(
        self,
        action: Callable[[], Reply],
        invocations: int,
        done: Callable[[Environment], bool],
        slug: str,
    ) -> None:
        """Send a webhook; return once the worker has finished ``invocations`` more messages
        (the webhook's and the AWS events' that follow it), the environment is ``done`` and
        no request of branchenv's has arrived for QUIET_SECONDS."""
        reply = action()
        if reply.status != 202:
            raise SystemExit(f"the webhook was answered {reply.status}: {reply.body}")
        self.invocations += invocations
        deadline = time.monotonic() + WAIT_SECONDS
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            requests = self.recording.requests()
            ours = sum(1 for r in requests if r.ours)
            deleted = sum(1 for r in requests if finished(r, self.queue_url))
            if ours != seen:
                seen, quiet_since = ours, time.monotonic()
            record = self.store.get(slug)
            settled = record is not None and done(record) and deleted >= self.invocations
            if settled and time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
            time.sleep(0.2)
        raise SystemExit(f"the stack did not settle within {WAIT_SECONDS:.0f} s")


def create(stack: LocalStack, branch: str, sha: str) -> Reply:
    """What GitHub does when a branch is created: it exists, then the signed webhook."""
    set_branch(stack.stub_url, REPOSITORY, branch, sha, exists=True)
    delivery = build_delivery("create", repository=REPOSITORY, branch=branch)
    return send(f"{stack.app_url}/github/webhook", delivery, SECRET)


def run_life() -> tuple[list[Request], str]:
    """A warm-up branch to ready, then one branch's life recorded; the requests and the
    work queue's URL."""
    options = stack_options(
        app_name="bench", image_source="build", time_factor=TIME_FACTOR, build_seconds=BUILD_SECONDS
    )
    with LocalStack(options) as stack:
        assert stack.infra is not None
        recording = Recording(stack.aws_url)
        recording.restart()
        driver = Driver(stack, recording)
        warm, sha1, sha2 = fake_sha("warm-up"), fake_sha("bench-1"), fake_sha("bench-2")

        def ready(sha: str) -> Callable[[Environment], bool]:
            return lambda env: env.status == "ready" and env.deployed_sha == sha

        # A first branch to ready, so the figures leave out what a fresh worker does once
        # (as the in-process mode's warm-up does).
        driver.run(lambda: push(stack, "warm-up", warm), 3, ready(warm), slug_of(stack, "warm-up"))
        recording.restart()
        driver.invocations = 0
        slug = slug_of(stack, BRANCH)
        # GitHub says where a created branch's head is, so the create event builds and
        # deploys it; the push that follows (git push -u sends both) brings the same sha.
        driver.run(lambda: create(stack, BRANCH, sha1), 3, ready(sha1), slug)
        driver.run(lambda: push(stack, BRANCH, sha1), 1, ready(sha1), slug)
        driver.run(lambda: push(stack, BRANCH, sha2), 3, ready(sha2), slug)
        driver.run(lambda: delete(stack, BRANCH), 1, lambda env: env.status == "deleted", slug)
        return recording.requests(), stack.infra.queue_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", action="store_true", help="log what branchenv does (INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.log else logging.WARNING,
        format="%(relativeCreated)7.0f ms %(name)s %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    for noisy in ("botocore", "urllib3", "github", "slack_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    requests, queue_url = run_life()
    print(
        "AWS requests per stage at the local stack's moto server, image source 'build' "
        "(branchenv's User-Agent only; push 1 brings the sha the create event built):"
    )
    stages = split_stages(requests, queue_url)
    life = sum(print_stage(stage.label, stage.calls) for stage in stages)
    print(f"{'whole life':<28} {life:>3} calls (create, two pushes, delete)")
    for stage in stages:
        if len(stage.runs) > 1:
            runs = " + ".join(str(n) for n in stage.runs)
            print(f"{stage.label}: the worker ran {len(stage.runs)} times, {runs} requests")
    others = Counter(r.agent for r in requests if not r.ours)
    pump = Counter(r.operation for r in requests if r.agent == f"{STAND_IN}/pump")
    print("not counted: " + ", ".join(f"{agent} {n}" for agent, n in sorted(others.items())))
    print(
        "  of which Lambda's SQS event source (the pump): "
        + ", ".join(f"{op} {n}" for op, n in sorted(pump.items()))
    )


if __name__ == "__main__":
    main()
