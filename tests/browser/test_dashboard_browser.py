"""The QA page in a real headless Chromium: QA sees a live environment and follows its link.

The Chalice app runs on Chalice's local server on a free loopback port, with an in-memory
store holding the environments and a work queue over a recording SQS client (what a Wake
click sends). The preview host is mapped by Chromium's
``--host-resolver-rules`` to a tiny page on another loopback port, so clicking the preview
link really navigates there; nothing leaves 127.0.0.1.

Chromium is the Debian package (``make chromium`` installs it; ``make test`` runs that
first). Where it is not installed the tests are skipped, saying how to install it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib.aws.sqs import WorkQueue
from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore, Status
from chalicelib.runtime import Runtime
from tests.conftest import offline_settings

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
DOMAIN = "preview.example.com"
SHA = "fedcba9876543210fedcba9876543210fedcba98"
SCRIPT_BRANCH = "<script>window.pwned = 1</script>"
PHONE = {"width": 390, "height": 844}
NOW = time.time()

SETTINGS = offline_settings(preview_domain=DOMAIN, preview_scheme="http", dashboard_auth="none")


def _environment(slug: str, branch: str, status: Status, **extra: Any) -> Environment:
    return Environment(
        slug=slug,
        repository="acme/shop",
        branch=branch,
        desired_sha=SHA,
        deployed_sha=SHA,
        status=status,
        pusher="octocat",
        commit_url=f"https://github.com/acme/shop/commit/{SHA}",
        created_at=NOW - 7200,
        updated_at=NOW - 300,
        ready_at=NOW - 300 if status is Status.READY else None,
        **extra,
    )


class _RecordingSqs:
    """The one SQS call a wake makes (SendMessage), recorded; the rest of the page reads."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **request: Any) -> dict[str, str]:
        self.sent.append(request)
        return {"MessageId": f"m-{len(self.sent)}"}


SQS = _RecordingSqs()


class _PreviewPage(BaseHTTPRequestHandler):
    """Stands in for every preview: says which host it was asked for."""

    def do_GET(self) -> None:
        body = f"<!doctype html><title>preview</title><h1>preview of {self.headers['Host']}</h1>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(server: Any) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "headless Chromium is not installed: run `make chromium` (as root, or with "
            "password-less sudo: apt-get install chromium chromium-driver)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def preview_port() -> Iterator[int]:
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), _PreviewPage))


@pytest.fixture(scope="module")
def dashboard_url() -> Iterator[str]:
    from chalice.config import Config
    from chalice.local import LocalChalice, LocalDevServer, create_local_server

    store = InMemoryEnvironmentStore()
    store.put(_environment("feature-a", "feature-a", Status.READY))
    store.put(_environment("script-x", SCRIPT_BRANCH, Status.FAILED, reason="health check failed"))
    store.put(_environment("nap", "nap", Status.SLEEPING, asleep=True))
    runtime = Runtime(SETTINGS, store=store)
    runtime.queue = WorkQueue(SQS, SETTINGS.queue_url)
    app_module.use_runtime(runtime)
    config = Config.create(chalice_stage="local", app_name="branchenv")
    if isinstance(app_module.app, LocalChalice):
        # Made local already in this process (the local stack's tests, run by the same
        # pytest worker): chalice's create_local_server would make it again, an
        # inheritance cycle.
        server = LocalDevServer(app_module.app, config, "127.0.0.1", 0)
    else:
        server = create_local_server(app_module.app, config, "127.0.0.1", 0)
    try:
        for port in _serve(server.server):
            yield f"http://127.0.0.1:{port}"
    finally:
        app_module.use_runtime(None)


@pytest.fixture(scope="module")
def browser(
    chromium_path: str, preview_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    resolver_rule = f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1:{preview_port}"
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_ARGS, resolver_rule],
            viewport=PHONE,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()


def test_qa_sees_the_ready_environment_row(page: Any, dashboard_url: str) -> None:
    page.goto(dashboard_url + "/")
    row = page.locator('tr[data-slug="feature-a"]')
    assert row.locator('td[data-label="Branch"] .branch').inner_text() == "feature-a"
    assert row.locator(".badge").inner_text() == "ready"
    assert row.locator('td[data-label="Pushed by"]').inner_text().endswith("octocat")
    assert row.locator("a.sha").inner_text() == SHA[:7]


def test_qa_follows_the_preview_link(page: Any, dashboard_url: str) -> None:
    page.goto(dashboard_url + "/")
    link = page.locator('tr[data-slug="feature-a"] a.preview')
    assert link.get_attribute("href") == f"http://feature-a.{DOMAIN}"
    link.click()
    page.wait_for_url(f"http://feature-a.{DOMAIN}/")
    assert page.locator("h1").inner_text() == f"preview of feature-a.{DOMAIN}"


def test_a_branch_named_script_is_shown_not_run(page: Any, dashboard_url: str) -> None:
    page.goto(dashboard_url + "/")
    row = page.locator('tr[data-slug="script-x"]')
    assert row.locator(".branch").inner_text() == SCRIPT_BRANCH
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_page_fits_a_phone_screen(page: Any, dashboard_url: str, tmp_path: Path) -> None:
    page.goto(dashboard_url + "/")
    page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("thead").is_hidden()


def test_qa_wakes_a_sleeping_preview_from_its_row(page: Any, dashboard_url: str) -> None:
    page.goto(dashboard_url + "/")
    assert page.locator("button.wake").count() == 1  # only the sleeping row has one
    row = page.locator('tr[data-slug="nap"]')
    assert row.locator(".badge").inner_text() == "sleeping"
    assert row.locator(".sleep-note").inner_text() == "sleeping: wakes on the first request"
    before = len(SQS.sent)
    row.locator("button.wake").click()
    note = row.locator(".wake-note")
    note.filter(has_text="waking up nap").wait_for(timeout=10_000)
    assert row.locator("button.wake").is_disabled()
    [sent] = SQS.sent[before:]
    assert sent["MessageGroupId"] == "nap"
    assert '"cause":"wake"' in sent["MessageBody"]
