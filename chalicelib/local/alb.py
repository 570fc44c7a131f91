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
  target group (the weighted one of a ForwardConfig with the highest weight);
- a target group's healthy targets take turns; with registered targets but none healthy,
  the load balancer fails open to all of them ("Health checks for Application Load
  Balancer target groups"); with none registered it answers 503 ("Troubleshoot your
  Application Load Balancers": HTTP 503, the target groups have no registered targets).
  A target the security groups keep the load balancer from is never connected to: after
  the connection timeout (10 s, on the local clock) the answer is 504, as ALB answers when
  it cannot establish a connection; a refused connection is 502.

The listener port is played on the local port: a preview URL carries it
(``http://<slug>.preview.localhost:8080``; browsers resolve ``*.localhost`` to loopback).
Never imported by the deployed Lambda.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.local.health import HealthChecker, PortReachable
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

    def action(self, host: str, path: str) -> dict[str, Any] | None:
        """The first action of the first matching rule, or the first listener's default."""
        default: dict[str, Any] | None = None
        for arn in self._listener_arns():
            rules = sorted(
                self._elbv2.describe_rules(ListenerArn=arn).get("Rules", []), key=_priority
            )
            for rule in rules:
                actions = sorted(rule.get("Actions", []), key=lambda a: int(a.get("Order", 1)))
                if rule.get("IsDefault") or str(rule.get("Priority")) == "default":
                    default = default or (actions[0] if actions else None)
                elif actions and conditions_match(rule.get("Conditions", []), host, path):
                    first: dict[str, Any] = actions[0]
                    return first
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
    ) -> None:
        self._elbv2 = clients.client("elbv2")
        self.router = Router(clients, listener_arns)
        self._checker, self._network = checker, network
        self._scale, self._reachable = scale, port_reachable
        self._turns = itertools.count()
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

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    # --- routing -----------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        host = host_name(headers.get("Host", ""))
        path = target.split("?", 1)[0]
        action = self.router.action(host, path)
        if action is None:
            return _error(503)
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
            if group:
                return self._forward(group, method, target, headers, body)
        return _error(503)

    def _forward(
        self, group: str, method: str, target: str, headers: dict[str, str], body: bytes
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
    weighted = sorted(groups, key=lambda g: -int(g.get("Weight", 1)))
    return str(weighted[0]["TargetGroupArn"]) if weighted else None


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
