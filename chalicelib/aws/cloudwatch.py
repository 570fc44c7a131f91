"""CloudWatch metrics: how many requests the load balancer sent each preview's target group.

The reaper's idle check reads ``AWS/ApplicationELB`` ``RequestCount`` (Sum) for many target
groups in as few ``GetMetricData`` calls as the API allows: at most 500 queries per call
("GetMetricData", CloudWatch API reference), each answer paged by ``NextToken``. One period
covers a whole window, so each query has a datapoint or two, never one per minute. ALB
publishes ``RequestCount`` per load balancer and target group only for minutes in which it
routed a request there ("CloudWatch metrics for your Application Load Balancer"): no
datapoint means no request.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.aws.errors import call

NAMESPACE = "AWS/ApplicationELB"
METRIC = "RequestCount"
MAX_QUERIES_PER_CALL = 500
# The longest period GetMetricData takes for data older than 15 days is a day's multiple;
# any multiple of 60 s is accepted for the recent windows sleep_after asks about.
MINUTE = 60


@dataclass(frozen=True)
class TrafficQuery:
    """The requests a target group got behind a load balancer, over the last ``seconds``."""

    load_balancer_arn: str
    target_group_arn: str
    seconds: int


def load_balancer_dimension(arn: str) -> str:
    """``app/<name>/<id>`` from a load balancer's (or one of its listeners') ARN."""
    resource = arn.split(":", 5)[-1]  # loadbalancer/app/n/id or listener/app/n/id/lid
    parts = resource.split("/")
    return "/".join(parts[1:4])


def target_group_dimension(arn: str) -> str:
    """``targetgroup/<name>/<id>`` from a target group's ARN."""
    return arn.split(":", 5)[-1]


class Metrics:
    """Reads load balancer metrics."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def request_counts(self, queries: Sequence[TrafficQuery], *, now: float) -> dict[str, float]:
        """Requests per target group ARN over each query's window ending ``now`` (0 where
        CloudWatch holds no datapoint). Queries of the same window share calls."""
        counts = {query.target_group_arn: 0.0 for query in queries}
        by_window: dict[int, list[TrafficQuery]] = {}
        for query in queries:
            by_window.setdefault(_period(query.seconds), []).append(query)
        for period, group in sorted(by_window.items()):
            for start in range(0, len(group), MAX_QUERIES_PER_CALL):
                chunk = group[start : start + MAX_QUERIES_PER_CALL]
                for arn, total in self._sums(chunk, period, now):
                    counts[arn] += total
        return counts

    def _sums(
        self, chunk: Sequence[TrafficQuery], period: int, now: float
    ) -> Iterator[tuple[str, float]]:
        ids = {f"q{index}": query.target_group_arn for index, query in enumerate(chunk)}
        requests = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": METRIC,
                        "Dimensions": [
                            {
                                "Name": "LoadBalancer",
                                "Value": load_balancer_dimension(query.load_balancer_arn),
                            },
                            {
                                "Name": "TargetGroup",
                                "Value": target_group_dimension(query.target_group_arn),
                            },
                        ],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for query_id, query in zip(ids, chunk, strict=True)
        ]
        kwargs: dict[str, Any] = {
            "MetricDataQueries": requests,
            "StartTime": datetime.fromtimestamp(now - period, UTC),
            "EndTime": datetime.fromtimestamp(now, UTC),
        }
        while True:
            answer = call("GetMetricData", self._client.get_metric_data, **kwargs)
            for result in answer.get("MetricDataResults", []):
                arn = ids.get(str(result.get("Id")))
                if arn is not None:
                    yield arn, float(sum(result.get("Values", [])))
            token = answer.get("NextToken")
            if not token:
                return
            kwargs["NextToken"] = token


def _period(seconds: int) -> int:
    """The window rounded up to whole minutes (GetMetricData's periods are multiples of 60)."""
    return max(MINUTE, math.ceil(seconds / MINUTE) * MINUTE)
