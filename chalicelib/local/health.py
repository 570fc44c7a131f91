"""The local load balancer's health checks, and what DescribeTargetHealth says of them.

Played as "Health checks for Application Load Balancer target groups" (ELB guide,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html)
describes them: every ``HealthCheckIntervalSeconds`` each registered target gets a request
on its health check port and path, answered within ``HealthCheckTimeoutSeconds`` with a
code the ``Matcher`` accepts, or it fails. A new target is ``initial`` until it passes one
check (then ``healthy``); ``UnhealthyThresholdCount`` consecutive failures make it
``unhealthy``, ``HealthyThresholdCount`` consecutive passes healthy again. A target the
security groups keep the load balancer from is never reached: its checks time out
(``Target.Timeout``). Intervals and timeouts run on the local clock (divided by the
stack's time factor).

moto reports every registered target ``healthy`` at once. :meth:`HealthChecker.install`
puts an ``after-call`` hook on the app's elbv2 client so DescribeTargetHealth answers what
these checks found, with the reason codes of "Target health states and reason codes" in
the same guide. Never imported by the deployed Lambda.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.local.tasks import TaskNetwork
from chalicelib.local.ticker import Ticker

log = logging.getLogger(__name__)

Key = tuple[str, str, int]  # (target group ARN, target IP, port)
PortReachable = Callable[[str, int], bool]
INITIAL = {
    "State": "initial",
    "Reason": "Elb.InitialHealthChecking",
    "Description": "Initial health checks in progress",
}
TIMEOUT = {"State": "unhealthy", "Reason": "Target.Timeout", "Description": "Request timed out"}
GROUP = "branchenv_local_target_group"  # where the call's group waits for its answer
MIN_SECONDS = 0.25  # the shortest interval and timeout, whatever the time factor


@dataclass
class _Target:
    state: str = "initial"
    passes: int = 0
    failures: int = 0
    due: float = 0.0
    reason: dict[str, str] | None = None


class HealthChecker:
    """Checks every registered target of the watched target groups; one thread."""

    def __init__(
        self,
        clients: Any,
        network: TaskNetwork,
        *,
        scale: Callable[[float], float] = lambda seconds: seconds,
        port_reachable: PortReachable | None = None,
        tick_seconds: float = 0.05,
        refresh_seconds: float = 1.0,
    ) -> None:
        self._elbv2 = clients.client("elbv2")
        self._network, self._scale, self._reachable = network, scale, port_reachable
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._targets: dict[Key, _Target] = {}
        self._groups: dict[str, dict[str, Any]] = {}  # ARN -> DescribeTargetGroups entry
        self._refreshed = 0.0
        self._verdicts: dict[tuple[str, int], tuple[float, bool]] = {}  # port_reachable's
        self._ticker = Ticker("health checks", tick_seconds, self._check_all)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def install(self, clients: Any) -> None:
        """DescribeTargetHealth on ``clients``' elbv2 client answers from these checks."""
        client = clients.client("elbv2")
        service = client.meta.service_model.service_id.hyphenize()  # elastic-load-balancing-v2
        client.meta.events.register(
            f"before-parameter-build.{service}.DescribeTargetHealth", _keep_group
        )
        client.meta.events.register(f"after-call.{service}.DescribeTargetHealth", self._show)

    # --- what is known -----------------------------------------------------------------

    def watch(self, group: str, address: str, port: int) -> None:
        """A target was just registered: check it from now on (state ``initial``)."""
        with self._lock:
            self._targets.setdefault((group, address, port), _Target())
        self._refreshed = 0.0  # read the group's settings on the next tick

    def forget(self, group: str, address: str, port: int) -> None:
        with self._lock:
            self._targets.pop((group, address, port), None)

    def state(self, group: str, address: str, port: int) -> str | None:
        with self._lock:
            target = self._targets.get((group, address, port))
            return target.state if target else None

    def health(self, group: str, address: str, port: int) -> dict[str, str] | None:
        """The TargetHealth AWS would report, or None for a target not checked here."""
        with self._lock:
            target = self._targets.get((group, address, port))
            if target is None:
                return None
            if target.state == "healthy":
                return {"State": "healthy"}
            if target.state == "initial":
                return dict(INITIAL)
            return dict(target.reason or TIMEOUT)

    def healthy(self, group: str) -> list[tuple[str, int]]:
        with self._lock:
            return [
                (address, port)
                for (arn, address, port), t in self._targets.items()
                if arn == group and t.state == "healthy"
            ]

    # --- the checks -------------------------------------------------------------------------

    def _check_all(self) -> None:
        if time.monotonic() - self._refreshed >= self._refresh:
            self._read_groups()
        self._check_due()

    def _read_groups(self) -> None:
        """Each watched group's health check settings and registered targets, from moto."""
        self._refreshed = time.monotonic()
        with self._lock:
            arns = sorted({key[0] for key in self._targets})
        for arn in arns:
            try:
                group = self._elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
                registered = self._elbv2.describe_target_health(TargetGroupArn=arn)
            except Exception as exc:  # deleted: its targets are no longer checked
                log.debug("health checks: %s is gone (%s)", arn, exc)
                with self._lock:
                    self._groups.pop(arn, None)
                    for key in [k for k in self._targets if k[0] == arn]:
                        del self._targets[key]
                continue
            present = {
                (arn, str(d["Target"]["Id"]), int(d["Target"].get("Port") or group["Port"]))
                for d in registered.get("TargetHealthDescriptions", [])
                if d.get("TargetHealth", {}).get("State") not in ("unused", "draining")
            }
            with self._lock:
                self._groups[arn] = group
                for key in [k for k in self._targets if k[0] == arn and k not in present]:
                    del self._targets[key]
                for key in present:
                    self._targets.setdefault(key, _Target())

    def _check_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [
                (key, self._groups[key[0]])
                for key, target in self._targets.items()
                if target.due <= now and key[0] in self._groups
            ]
        for key, group in due:
            passed, reason = self._check(key, group)
            self._record(key, group, passed, reason)

    def _check(self, key: Key, group: dict[str, Any]) -> tuple[bool, dict[str, str] | None]:
        arn, address, port = key
        checked = str(group.get("HealthCheckPort") or "traffic-port")
        check_port = int(checked) if checked.isdigit() else port
        if not self._port_open(arn, check_port):
            return False, dict(TIMEOUT)
        where = self._network.resolve(address, check_port)
        if where is None:  # nothing listens at that address: the connection times out
            return False, dict(TIMEOUT)
        timeout = max(MIN_SECONDS, self._scale(float(group.get("HealthCheckTimeoutSeconds", 5))))
        connection = http.client.HTTPConnection(where[0], where[1], timeout=timeout)
        try:
            connection.request(
                "GET", str(group.get("HealthCheckPath") or "/"), headers={"Host": address}
            )
            code = connection.getresponse().status
        except TimeoutError:
            return False, dict(TIMEOUT)
        except OSError:
            return False, {
                "State": "unhealthy",
                "Reason": "Target.FailedHealthChecks",
                "Description": "Health checks failed",
            }
        finally:
            connection.close()
        if matches(str(group.get("Matcher", {}).get("HttpCode", "200")), code):
            return True, None
        return False, {
            "State": "unhealthy",
            "Reason": "Target.ResponseCodeMismatch",
            "Description": f"Health checks failed with these codes: [{code}]",
        }

    def _port_open(self, arn: str, port: int) -> bool:
        """port_reachable, asked again at most every ``refresh_seconds`` (it reads the
        load balancers, rules and security groups from moto)."""
        if self._reachable is None:
            return True
        now = time.monotonic()
        known = self._verdicts.get((arn, port))
        if known is None or now - known[0] >= self._refresh:
            known = (now, self._reachable(arn, port))
            self._verdicts[(arn, port)] = known
        return known[1]

    def _record(
        self, key: Key, group: dict[str, Any], passed: bool, reason: dict[str, str] | None
    ) -> None:
        interval = max(MIN_SECONDS, self._scale(float(group.get("HealthCheckIntervalSeconds", 30))))
        healthy_after = int(group.get("HealthyThresholdCount", 5))
        unhealthy_after = int(group.get("UnhealthyThresholdCount", 2))
        with self._lock:
            target = self._targets.get(key)
            if target is None:
                return
            target.due = time.monotonic() + interval
            if passed:
                target.passes, target.failures = target.passes + 1, 0
                # A new target is in service after one passed check; an unhealthy one
                # after HealthyThresholdCount in a row.
                if target.state == "initial" or target.passes >= healthy_after:
                    target.state = "healthy"
                return
            target.passes, target.failures = 0, target.failures + 1
            target.reason = reason
            if target.failures >= unhealthy_after:
                if target.state != "unhealthy":
                    log.info("health checks: %s:%d unhealthy (%s)", key[1], key[2], reason)
                target.state = "unhealthy"

    def _show(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """after-call hook: each registered target's TargetHealth as these checks found it."""
        arn = str(context.get(GROUP, ""))
        for description in parsed.get("TargetHealthDescriptions", []):
            if description.get("TargetHealth", {}).get("State") != "healthy":
                continue  # moto's "unused", "draining", ... are already what AWS says
            target = description.get("Target", {})
            seen = self.health(arn, str(target.get("Id")), int(target.get("Port") or 0))
            description["TargetHealth"] = seen or dict(INITIAL)


def _keep_group(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[GROUP] = params.get("TargetGroupArn", "")


def matches(matcher: str, code: int) -> bool:
    """Whether an HTTP ``code`` passes a Matcher HttpCode ("200", "200,202", "200-399")."""
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and int(low) <= code <= int(high or low):
            return True
    return False
