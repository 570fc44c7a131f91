"""The local load balancer's ``RequestCount``, published to the moto server's CloudWatch.

ALB publishes ``AWS/ApplicationELB`` ``RequestCount`` (unit Count, statistic Sum) per
target group with the dimensions ``LoadBalancer`` (the load balancer ARN after
``loadbalancer/``, e.g. ``app/demo-previews/50dc6c495c0c9188``) and ``TargetGroup`` (the
target group ARN after its last ``:``, e.g. ``targetgroup/demo-shop/73e2d6bc24d8a067``);
a request counts once the load balancer has chosen a target for it, and nothing is
reported for a minute with no request ("CloudWatch metrics for your Application Load
Balancer", ELB guide,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
So the reaper's GetMetricData reads the same metric locally as on AWS.

:class:`RequestCounter` counts in memory and writes one datum per (load balancer, target
group) per flush: every few seconds on a :class:`~chalicelib.local.ticker.Ticker`, and at
stop, each stamped with the time of the last request it counts (a batch covers a few
seconds, where ALB's cover a minute: a quiet preview looks quiet as soon as on AWS).
Never imported by the deployed Lambda.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.local.ticker import Ticker

NAMESPACE = "AWS/ApplicationELB"
METRIC = "RequestCount"
FLUSH_SECONDS = 5.0
# PutMetricData takes at most 1000 metrics per request (CloudWatch API reference).
MAX_DATA_PER_CALL = 1000

Key = tuple[str, str]  # (LoadBalancer, TargetGroup) dimension values


def load_balancer_dimension(load_balancer_arn: str) -> str:
    """``LoadBalancer``: the load balancer ARN after ``loadbalancer/``."""
    return load_balancer_arn.split(":loadbalancer/", 1)[-1]


def target_group_dimension(target_group_arn: str) -> str:
    """``TargetGroup``: the target group ARN after its last ``:``."""
    return target_group_arn.rsplit(":", 1)[-1]


def dimensions(load_balancer_arn: str, target_group_arn: str) -> list[dict[str, str]]:
    """The two dimensions of a per-target-group datum, as CloudWatch takes them."""
    key = (load_balancer_dimension(load_balancer_arn), target_group_dimension(target_group_arn))
    return _dimensions(key)


def _dimensions(key: Key) -> list[dict[str, str]]:
    return [{"Name": "LoadBalancer", "Value": key[0]}, {"Name": "TargetGroup", "Value": key[1]}]


def _datum(key: Key, value: tuple[int, float]) -> dict[str, Any]:
    counted, last = value
    return {
        "MetricName": METRIC,
        "Dimensions": _dimensions(key),
        "Timestamp": datetime.fromtimestamp(last, UTC),
        "Value": float(counted),
        "Unit": "Count",
    }


class RequestCounter:
    """Counts requests per target group and publishes them to ``clients``' CloudWatch."""

    def __init__(
        self,
        clients: Any,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cloudwatch = clients.client("cloudwatch")
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[Key, tuple[int, float]] = {}  # count, time of the last request
        self._ticker = Ticker("request counts", flush_seconds, self.flush)

    def count(self, load_balancer_arn: str, target_group_arn: str) -> None:
        """One request routed to a target of ``target_group_arn``."""
        key = (load_balancer_dimension(load_balancer_arn), target_group_dimension(target_group_arn))
        now = self._clock()
        with self._lock:
            counted, _ = self._counts.get(key, (0, now))
            self._counts[key] = (counted + 1, now)

    def pending(self) -> dict[Key, int]:
        """What the next flush will publish."""
        with self._lock:
            return {key: counted for key, (counted, _) in self._counts.items()}

    def flush(self) -> None:
        """Publish what was counted since the last flush; what fails to go waits for the next."""
        with self._lock:
            counts, self._counts = self._counts, {}
        items = list(counts.items())
        for start in range(0, len(items), MAX_DATA_PER_CALL):
            chunk = items[start : start + MAX_DATA_PER_CALL]
            try:
                self._cloudwatch.put_metric_data(
                    Namespace=NAMESPACE, MetricData=[_datum(*item) for item in chunk]
                )
            except Exception:
                self._keep(items[start:])  # moto is away for a moment: nothing is lost
                raise

    def _keep(self, items: list[tuple[Key, tuple[int, float]]]) -> None:
        with self._lock:
            for key, (counted, last) in items:
                more, later = self._counts.get(key, (0, last))
                self._counts[key] = (counted + more, max(last, later))

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        """Stop the ticks, then publish what is left."""
        self._ticker.stop()
        self.flush()
