"""Prints how light the webhook path is: app.py's cold import and the intake's own time."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.handlers.intake import IntakeConfig, receive  # noqa: E402
from chalicelib.handlers.webhooks import sign  # noqa: E402

SECRET = "bench-secret"
PAYLOAD = ROOT / "tests/events/github/push.webhooks-js.branch-update.payload.json"
IMPORT_PROBE = (
    "import sys, time; t = time.perf_counter(); import app; "
    "ms = (time.perf_counter() - t) * 1000; "
    "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'github', 'slack_sdk', 'yaml', "
    "'boto3'}); print(ms, ','.join(heavy))"
)


class MemoryQueue:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, message: dict[str, Any], *, group_id: str, dedup_id: str | None = None) -> str:
        self.sent += 1
        return str(self.sent)


def cold_imports(runs: int = 5) -> tuple[list[float], str]:
    times, heavy = [], ""
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        times.append(float(out[0]))
        heavy = out[1] if len(out) > 1 else ""
    return times, heavy


def intake_times(runs: int = 3000) -> list[float]:
    body = PAYLOAD.read_bytes()
    headers = {
        "x-hub-signature-256": sign(body, SECRET),
        "x-github-event": "push",
        "x-github-delivery": "bench",
    }
    config = IntakeConfig(
        app_name="bench",
        preview_domain="preview.example.com",
        preview_scheme="https",
        allowed_repositories=frozenset(),
        max_body_bytes=5 * 1024 * 1024,
        secrets=lambda: (SECRET,),
    )
    queue = MemoryQueue()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        answer = receive(headers, body, config, queue)
        samples.append((time.perf_counter() - start) * 1000)
        assert answer.status == 202
    return samples


def main() -> None:
    imports, heavy = cold_imports()
    print(
        f"import app (cold, {len(imports)} runs): median {statistics.median(imports):.0f} ms, "
        f"max {max(imports):.0f} ms"
    )
    print(
        f"heavy modules loaded by import app: {heavy or 'none'} "
        "(PyGithub, slack-sdk and PyYAML must not appear)"
    )
    samples = sorted(intake_times())
    size = len(json.dumps(json.loads(PAYLOAD.read_bytes())))
    pick = lambda q: samples[int(q * (len(samples) - 1))]  # noqa: E731
    print(
        f"intake per delivery ({len(samples)} runs, {size}-byte push payload, in-memory "
        f"queue): p50 {pick(0.5):.3f} ms, p95 {pick(0.95):.3f} ms, p99 {pick(0.99):.3f} ms"
    )


if __name__ == "__main__":
    main()
