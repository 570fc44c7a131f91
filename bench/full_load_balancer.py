"""Previews on a pool of load balancers, through the local stack with AWS's real quota.

An Application Load Balancer takes at most 100 rules (default quota) and 100 target
groups ("Quotas for your Application Load Balancers"); the local stack's strict layer
holds both. This script starts `branchenv local`'s stack with ``--load-balancers N``
load balancers and brings ``--previews`` branches to `ready`, then prints, read from moto
itself: how many previews are ready, how many listener rules each load balancer holds,
and how many DNS aliases point at the load balancer that holds their environment's rule
(the Route53 alias target against the DNS name of the rule's listener's load balancer).

When the previews fill the pool (``--previews`` = load balancers x quota) it pushes one
more and prints how long that one took to end `failed` and why, checks that nothing of
it is left in AWS, deletes one preview, pushes it again and prints how long it took to
become `ready`. Last, it deletes every branch and prints what is left in AWS (nothing).

Run: .venv/bin/python bench/full_load_balancer.py [--load-balancers 1] [--previews 100]
     [--rules-per-load-balancer 100] [--time-factor 300]
The issue 15 run: ... --load-balancers 2 --previews 150
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers

from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import delete, push, slug_of, stack_options
from tests.e2e.pool import alias_targets, balancer_names, rule_balancers

WORKERS = 8  # branches pushed at once (the webhook senders, not the worker's concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-balancers", type=int, default=1)
    parser.add_argument("--previews", type=int, default=100, help="branches brought to ready")
    parser.add_argument(
        "--rules-per-load-balancer", type=int, default=100, help="ELB's quota (default: AWS's)"
    )
    parser.add_argument("--time-factor", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request lines
    options = stack_options(
        app_name="bench",
        build_seconds=0.2,
        time_factor=args.time_factor,
        load_balancers=args.load_balancers,
    )
    with LocalStack(options) as stack:
        assert stack.strict is not None
        stack.strict.rules_per_load_balancer = args.rules_per_load_balancer
        branches = [f"bench/{n:03d}" for n in range(args.previews)]
        print(
            f"{args.load_balancers} load balancer(s), {args.rules_per_load_balancer} rules "
            f"each, {len(branches)} branches pushed {WORKERS} at a time"
        )
        started = time.monotonic()
        records = each(branches, lambda b: settle(stack, b, fake_sha(b)))
        took = time.monotonic() - started
        ready = sum(1 for r in records if r.get("status") == "ready")
        print(f"{ready}/{len(branches)} previews ready in {took:.1f} s")
        for reason in sorted({str(r.get("reason")) for r in records if r.get("status") != "ready"}):
            print(f"  not ready: {reason}")
        print_placement(stack)

        if len(branches) >= args.load_balancers * args.rules_per_load_balancer:
            overflow(stack, branches)
        delete_all(stack, [*branches, OVERFLOW])


OVERFLOW = "bench/overflow"


def overflow(stack: LocalStack, branches: Sequence[str]) -> None:
    """One preview more than the pool takes: how fast it fails, and that it leaves nothing."""
    started = time.monotonic()
    record = settle(stack, OVERFLOW, fake_sha("overflow-1"))
    print(
        f"preview {len(branches) + 1}: {record.get('status')} after "
        f"{time.monotonic() - started:.1f} s: {record.get('reason')}"
    )
    left = stack.runtime.inventory.managed(slug_of(stack, OVERFLOW))
    print(f"left in AWS for it: {len(left)} resources {[r.kind for r in left]}")

    delete(stack, branches[0])
    wait(stack, slug_of(stack, branches[0]), lambda r: r.get("status") == "deleted")
    started = time.monotonic()
    record = settle(stack, OVERFLOW, fake_sha("overflow-2"))
    print(
        f"after deleting one, preview {len(branches) + 1}: {record.get('status')} "
        f"after {time.monotonic() - started:.1f} s"
    )


def print_placement(stack: LocalStack) -> None:
    """Rules per load balancer and DNS aliases against the rule's load balancer, from moto."""
    rules = rule_balancers(stack)
    aliases = alias_targets(stack)
    per_balancer = Counter(rules.values())
    for name in balancer_names(stack):
        print(f"  on {name}: {per_balancer.get(name, 0)} preview rules")
    matching = sum(1 for host, balancer in rules.items() if aliases.get(host) == balancer)
    print(
        f"DNS aliases pointing at the load balancer holding their rule: {matching}/{len(rules)}"
        f" ({len(aliases)} aliases in the zone)"
    )


def delete_all(stack: LocalStack, branches: Sequence[str]) -> None:
    """Delete every branch, wait for each record to say deleted, and count what is left."""
    present = [b for b in branches if stack.runtime.store.get(slug_of(stack, b)) is not None]
    started = time.monotonic()
    records = each(present, lambda b: remove(stack, b))
    deleted = sum(1 for r in records if r.get("status") == "deleted")
    took = time.monotonic() - started
    print(f"{deleted}/{len(present)} branches deleted in {took:.1f} s")
    left = stack.runtime.inventory.managed()
    kinds = Counter(resource.kind for resource in left)
    print(f"left in AWS after deleting all: {len(left)} resources {dict(kinds)}")
    print(f"listener rules left: {len(rule_balancers(stack))}")
    print(f"DNS aliases left: {len(alias_targets(stack))}")


def remove(stack: LocalStack, branch: str) -> dict[str, Any]:
    delete(stack, branch)
    return wait(stack, slug_of(stack, branch), lambda r: r.get("status") == "deleted")


def each(branches: Sequence[str], run: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(run, branches))


def settle(stack: LocalStack, branch: str, sha: str) -> dict[str, Any]:
    push(stack, branch, sha)
    return wait(
        stack,
        slug_of(stack, branch),
        lambda r: r.get("status") in ("ready", "failed") and r.get("desired_sha") == sha,
    )


def wait(
    stack: LocalStack, slug: str, done: Callable[[dict[str, Any]], bool], limit: float = 600.0
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        env = stack.runtime.store.get(slug)
        record = env.to_json() if env is not None else {}
        if env is not None and done(record):
            return record
        time.sleep(0.2)
    return record


if __name__ == "__main__":
    main()
