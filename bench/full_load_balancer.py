"""The 101st preview on one load balancer, through the local stack with AWS's real quota.

An Application Load Balancer takes at most 100 rules (default quota) and 100 target
groups ("Quotas for your Application Load Balancers"); the local stack's strict layer
holds both. This script starts `branchenv local`'s stack with one load balancer, brings
100 previews to `ready`, pushes a 101st and prints how long it took to end `failed` and
why, checks that nothing of it is left in AWS, deletes one preview, pushes the 101st again
and prints how long it took to become `ready`.

Run: .venv/bin/python bench/full_load_balancer.py [--previews 100] [--time-factor 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers

from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import delete, push, slug_of, stack_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previews", type=int, default=100, help="previews that fit")
    parser.add_argument("--time-factor", type=int, default=300)
    args = parser.parse_args()
    options = stack_options(
        app_name="bench", build_seconds=0.2, time_factor=args.time_factor, load_balancers=1
    )
    with LocalStack(options) as stack:
        if args.previews != 100:
            assert stack.strict is not None
            stack.strict.rules_per_load_balancer = args.previews
        started = time.monotonic()
        branches = [f"bench/{n:03d}" for n in range(args.previews)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            records = list(pool.map(lambda b: settle(stack, b, fake_sha(b)), branches))
        ready = sum(1 for r in records if r.get("status") == "ready")
        print(f"{ready}/{len(branches)} previews ready in {time.monotonic() - started:.1f} s")

        last = "bench/overflow"
        started = time.monotonic()
        record = settle(stack, last, fake_sha("overflow-1"))
        print(
            f"preview {len(branches) + 1}: {record.get('status')} after "
            f"{time.monotonic() - started:.1f} s: {record.get('reason')}"
        )
        left = stack.runtime.inventory.managed(slug_of(stack, last))
        print(f"left in AWS for it: {len(left)} resources {[r.kind for r in left]}")

        delete(stack, branches[0])
        wait(stack, slug_of(stack, branches[0]), lambda r: r.get("status") == "deleted")
        started = time.monotonic()
        record = settle(stack, last, fake_sha("overflow-2"))
        print(
            f"after deleting one, preview {len(branches) + 1}: {record.get('status')} "
            f"after {time.monotonic() - started:.1f} s"
        )


def settle(stack: LocalStack, branch: str, sha: str) -> dict[str, Any]:
    push(stack, branch, sha)
    return wait(
        stack,
        slug_of(stack, branch),
        lambda r: r.get("status") in ("ready", "failed") and r.get("desired_sha") == sha,
    )


def wait(stack: LocalStack, slug: str, done: Any, limit: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        env = stack.runtime.store.get(slug)
        record = env.to_json() if env is not None else {}
        if env is not None and done(record):
            return record
        time.sleep(0.2)
    return record


if __name__ == "__main__":
    main()
