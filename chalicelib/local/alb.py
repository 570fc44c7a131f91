"""The local load balancer: HTTP on 127.0.0.1:N, routed the way the ALB's listener says.

Every request is routed from what moto holds at that moment (so a rule made or deleted by
converge counts from the next request), as "Listener rules for your Application Load
Balancer" and "Condition types for listener rules" (ELB guide,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html)
describe it:

- the rules of each listener of the pool in priority order (lowest first), the default
  rule last; the first whose conditions all match acts;
- ``host-header``: the request's host name (the Host header without its port), compared
  case-insensitively, ``*`` matching 0 or more characters and ``?`` exactly one
  (HostHeaderConditionConfig, ELB API reference); ``path-pattern``: case-sensitive, the
  same wildcards; a rule with any other condition type is skipped (not played locally);
- ``fixed-response`` answers its status, content type and body (terraform's 404 text on
  the default rule); ``redirect`` answers its Location; ``forward`` goes to a target of the
  target group (the weighted one of a ForwardConfig with the highest weight; weight 0
  never gets a request);
- a Lambda target group (a sleeping preview's waker) gets the request as the Lambda
  event, and its answer is the response ("Lambda functions as targets", ELB guide,
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html):
  the event has ``httpMethod``, ``path``, ``queryStringParameters`` (not URL-decoded; the
  last value of a repeated key), ``headers`` (lower-case names, the last of a repeated
  header), ``body`` (as is for text/*, JSON, JavaScript and XML, else base64 with
  ``isBase64Encoded``) and ``requestContext.elb.targetGroupArn``; the function's
  ``statusCode``, ``headers``/``multiValueHeaders`` and ``body`` (base64-decoded if
  ``isBase64Encoded``) go to the client, and a function that fails or answers without a
  status is a 502. The function is app.py's ``waker``, called in-process (``waker``);
  without one, the group has no target: 503;
- a target group's healthy targets take turns; with registered targets but none healthy,
  the load balancer fails open to all of them ("Health checks for Application Load
  Balancer target groups"); with none registered it answers 503 ("Troubleshoot your
  Application Load Balancers": HTTP 503, the target groups have no registered targets).
  A target the security groups keep the load balancer from is never connected to: after
  the connection timeout (10 s, on the local clock) the answer is 504, as ALB answers when
  it cannot establish a connection; a refused connection is 502.
- each request for which a target was chosen counts in the target group's
  ``RequestCount``, published to moto's CloudWatch (chalicelib/local/requestcount.py).

The listener port is played on the local port: a preview URL carries it
(``http://<slug>.preview.localhost:8080``; browsers resolve ``*.localhost`` to loopback).
Never imported by the deployed Lambda.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.local.health import HealthChecker, PortReachable
from chalicelib.local.requestcount import FLUSH_SECONDS, RequestCounter
from chalicelib.local.tasks import TaskNetwork

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SHUTDOWN_POLL_SECONDS = 0.05  # how soon serve_forever notices shutdown()
CONNECT_TIMEOUT_SECONDS = 10.0  # ALB's connection timeout to a target
IDLE_TIMEOUT_SECONDS = 60.0  # the load balancer's default idle timeout
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade"}
)  # fmt: skip
ERROR_PAGES = {
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}
Answer = tuple[int, list[tuple[str, str]], bytes]
Waker = Callable[[dict[str, Any]], dict[str, Any]]  # a Lambda target: event in, response out
# Bodies the load balancer hands a Lambda function as they are; any other is base64.
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


@lru_cache(maxsize=1024)
def _pattern(value: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value
    )  # fmt: skip
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def host_matches(values: Sequence[str], host: str) -> bool:
    """A host-header condition: any value matches the host name, case-insensitively."""
    return any(_pattern(value, True).match(host) for value in values)


def path_matches(values: Sequence[str], path: str) -> bool:
    """A path-pattern condition: any value matches the path, case-sensitively."""
    return any(_pattern(value, False).match(path) for value in values)


def host_name(header: str) -> str:
    """The host name of a Host header: without its port, lower-cased."""
    header = header.strip()
    if header.startswith("["):  # an IPv6 literal
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0].lower() if ":" in header else header.lower()


def conditions_match(conditions: Sequence[dict[str, Any]], host: str, path: str) -> bool:
    for condition in conditions:
        field = condition.get("Field")
        if field == "host-header":
            config = condition.get("HostHeaderConfig") or {}
            if not host_matches(config.get("Values") or condition.get("Values", []), host):
                return False
        elif field == "path-pattern":
            config = condition.get("PathPatternConfig") or {}
            if not path_matches(config.get("Values") or condition.get("Values", []), path):
                return False
        else:
            return False  # not played locally: never matches
    return True


def _priority(rule: dict[str, Any]) -> float:
    value = str(rule.get("Priority", "default"))
    return float(value) if value.isdigit() else float("inf")


class Router:
    """Reads the listeners' rules from moto and chooses the action for a request."""

    def __init__(self, clients: Any, listener_arns: Callable[[], Sequence[str]]) -> None:
        self._elbv2 = clients.client("elbv2")
        self._listener_arns = listener_arns

    def route(self, host: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The listener and first action of the first matching rule, or the first
        listener's default."""
        default: tuple[str, dict[str, Any]] | None = None
        for arn in self._listener_arns():
            rules = sorted(
                self._elbv2.describe_rules(ListenerArn=arn).get("Rules", []), key=_priority
            )
            for rule in rules:
                actions = sorted(rule.get("Actions", []), key=lambda a: int(a.get("Order", 1)))
                if rule.get("IsDefault") or str(rule.get("Priority")) == "default":
                    default = default or ((arn, actions[0]) if actions else None)
                elif actions and conditions_match(rule.get("Conditions", []), host, path):
                    return arn, actions[0]
        return default


class LocalLoadBalancer:
    """The HTTP server on 127.0.0.1:``port`` (0: any free port) playing the ALB."""

    def __init__(
        self,
        clients: Any,
        checker: HealthChecker,
        network: TaskNetwork,
        *,
        listener_arns: Callable[[], Sequence[str]],
        port: int = 8080,
        scale: Callable[[float], float] = lambda seconds: seconds,
        port_reachable: PortReachable | None = None,
        waker: Waker | None = None,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._elbv2 = clients.client("elbv2")
        self.router = Router(clients, listener_arns)
        self._checker, self._network = checker, network
        self._scale, self._reachable = scale, port_reachable
        self._turns = itertools.count()
        self._waker = waker
        self.requests = RequestCounter(clients, flush_seconds=flush_seconds)
        self._lambda_groups: dict[str, bool] = {}  # target group ARN -> TargetType lambda
        self._balancers: dict[str, str] = {}  # listener ARN -> load balancer ARN
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = balancer.answer(
                        self.command, self.path, dict(self.headers.items()), body
                    )
                except Exception as exc:  # never a traceback to a user: ALB's own 502
                    log.warning("load balancer: %s: %s", type(exc).__name__, exc)
                    status, headers, payload = _error(502)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("load balancer: " + format, *args)

        self._server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(SHUTDOWN_POLL_SECONDS,),
            name="local-alb",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()
        self.requests.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self.requests.stop()  # the last counts, before moto goes

    # --- routing -----------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        host = host_name(headers.get("Host", ""))
        path = target.split("?", 1)[0]
        routed = self.router.route(host, path)
        if routed is None:
            return _error(503)
        listener, action = routed
        kind = action.get("Type")
        if kind == "fixed-response":
            config = action.get("FixedResponseConfig", {})
            content_type = str(config.get("ContentType") or "text/plain")
            return (
                int(config.get("StatusCode", 200)),
                [("Content-Type", content_type)],
                str(config.get("MessageBody", "")).encode(),
            )
        if kind == "redirect":
            return _redirect(action.get("RedirectConfig", {}), host, path, target, self.port)
        if kind == "forward":
            group = _forward_group(action)
            if group and self._is_lambda(group):
                if self._waker is None:  # no function registered: no target
                    return _error(503)
                self.requests.count(self._balancer_of(listener), group)
                return self._invoke(self._waker, group, method, target, headers, body)
            if group:
                return self._forward(listener, group, method, target, headers, body)
        return _error(503)

    def _is_lambda(self, group: str) -> bool:
        if group not in self._lambda_groups:  # a group's TargetType never changes
            [described] = self._elbv2.describe_target_groups(TargetGroupArns=[group])[
                "TargetGroups"
            ]
            self._lambda_groups[group] = described.get("TargetType") == "lambda"
        return self._lambda_groups[group]

    def _balancer_of(self, listener: str) -> str:
        if listener not in self._balancers:
            [described] = self._elbv2.describe_listeners(ListenerArns=[listener])["Listeners"]
            self._balancers[listener] = str(described["LoadBalancerArn"])
        return self._balancers[listener]

    def _invoke(
        self,
        waker: Waker,
        group: str,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> Answer:
        event = lambda_event(group, method, target, headers, body, port=self.port)
        try:
            response = waker(event)
        except Exception as exc:  # the function failed: ALB answers 502
            log.warning("load balancer: the Lambda target failed (%s: %s)", type(exc).__name__, exc)
            return _error(502)
        return lambda_answer(response)

    def _forward(
        self,
        listener: str,
        group: str,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> Answer:
        candidates = self._checker.healthy(group)
        if not candidates:  # fail open to every registered target, or 503 if there is none
            described = self._elbv2.describe_target_health(TargetGroupArn=group)
            candidates = [
                (str(d["Target"]["Id"]), int(d["Target"].get("Port") or 0))
                for d in described.get("TargetHealthDescriptions", [])
                if d.get("TargetHealth", {}).get("State") not in ("unused", "draining")
            ]
        if not candidates:
            return _error(503)
        address, port = sorted(candidates)[next(self._turns) % len(candidates)]
        self.requests.count(self._balancer_of(listener), group)
        where = self._network.resolve(address, port)
        if where is None or (self._reachable is not None and not self._reachable(group, port)):
            # Nothing answers, or the security groups drop the packets: ALB waits out its
            # connection timeout and answers 504. The task is never reached.
            time.sleep(self._scale(CONNECT_TIMEOUT_SECONDS))
            return _error(504)
        return self._proxy(where, method, target, headers, body)

    def _proxy(
        self,
        where: tuple[str, int],
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> Answer:
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        forwarded = sent.get("X-Forwarded-For")
        sent["X-Forwarded-For"] = f"{forwarded}, {LOOPBACK}" if forwarded else LOOPBACK
        sent["X-Forwarded-Proto"], sent["X-Forwarded-Port"] = "http", str(self.port)
        connection = http.client.HTTPConnection(
            where[0], where[1], timeout=max(1.0, self._scale(IDLE_TIMEOUT_SECONDS))
        )
        try:
            connection.request(method, target, body=body or None, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
            return response.status, kept, payload
        except TimeoutError:
            return _error(504)
        except OSError:
            return _error(502)
        finally:
            connection.close()


def _forward_group(action: dict[str, Any]) -> str | None:
    if action.get("TargetGroupArn"):
        return str(action["TargetGroupArn"])
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
    weighted = sorted(
        (g for g in groups if int(g.get("Weight", 1)) > 0), key=lambda g: -int(g.get("Weight", 1))
    )
    return str(weighted[0]["TargetGroupArn"]) if weighted else None


def lambda_event(
    group: str, method: str, target: str, headers: dict[str, str], body: bytes, *, port: int
) -> dict[str, Any]:
    """The event a load balancer sends its Lambda target for one request."""
    path, _, query = target.partition("?")
    parameters: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            parameters[key] = value  # not decoded, as the load balancer sends it
    sent = {name.lower(): value for name, value in headers.items()}
    forwarded = sent.get("x-forwarded-for")
    sent["x-forwarded-for"] = f"{forwarded}, {LOOPBACK}" if forwarded else LOOPBACK
    sent["x-forwarded-proto"], sent["x-forwarded-port"] = "http", str(port)
    sent["x-amzn-trace-id"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    content_type = sent.get("content-type", "").lower()
    text = not body or content_type.startswith(TEXT_TYPES)
    return {
        "requestContext": {"elb": {"targetGroupArn": group}},
        "httpMethod": method,
        "path": path,
        "queryStringParameters": parameters,
        "headers": sent,
        "body": body.decode("utf-8", "replace") if text else base64.b64encode(body).decode(),
        "isBase64Encoded": not text,
    }


def lambda_answer(response: Any) -> Answer:
    """What the client gets for a Lambda target's ``response``; malformed: 502."""
    if not isinstance(response, dict) or not str(response.get("statusCode", "")).isdigit():
        log.warning("load balancer: the Lambda target's response has no statusCode")
        return _error(502)
    headers = [(str(k), str(v)) for k, v in (response.get("headers") or {}).items()]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | {"content-length"}]
    body = str(response.get("body") or "")
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return int(response["statusCode"]), kept, payload


def _redirect(config: dict[str, Any], host: str, path: str, target: str, port: int) -> Answer:
    query = target.split("?", 1)[1] if "?" in target else ""
    values = {"#{host}": host, "#{path}": path.lstrip("/"), "#{port}": str(port)}
    values["#{protocol}"], values["#{query}"] = "http", query

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    location = (
        f"{fill(str(config.get('Protocol', '#{protocol}'))).lower()}://"
        f"{fill(str(config.get('Host', '#{host}')))}:{fill(str(config.get('Port', '#{port}')))}"
        f"/{fill(str(config.get('Path', '/#{path}'))).lstrip('/')}"
    )
    filled_query = fill(str(config.get("Query", "#{query}")))
    if filled_query:
        location += f"?{filled_query}"
    status = 301 if config.get("StatusCode") == "HTTP_301" else 302
    return status, [("Location", location)], b""


def _error(status: int) -> Answer:
    title = ERROR_PAGES.get(status, str(status))
    page = (
        f"<html><head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return status, [("Content-Type", "text/html")], page.encode()
