"""QA clicks a preview in a real headless Chromium, through the whole local stack (issue 16).

A branch is pushed to ``branchenv local`` (free ports, the built-in preview app); the
dashboard lists it; clicking its preview link opens ``http://<slug>.preview.localhost:<port>``,
which Chromium resolves to loopback by itself (``*.localhost``), and the local load
balancer routes it to the branch's task, whose page names the commit. Skipped, saying how
to install it, where Chromium is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.browser.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import REPOSITORY, push, slug_of, stack_options, wait_for_environment

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
BRANCH = "feature/clickable"
SHA = fake_sha("clickable")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "headless Chromium is not installed: run `make chromium` (as root, or with "
            "password-less sudo: apt-get install chromium chromium-driver)"
        )
    with LocalStack(stack_options(app_name="clicks")) as running:
        yield running


@pytest.fixture(scope="module")
def page(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def test_qa_clicks_the_preview_link_and_sees_the_preview(stack: LocalStack, page: Any) -> None:
    push(stack, BRANCH, SHA)
    slug = slug_of(stack, BRANCH)
    record = wait_for_environment(stack, slug, lambda r: r.get("status") == "ready")
    assert record.get("status") == "ready", record.get("reason")

    page.goto(stack.app_url + "/")
    link = page.locator(f'tr[data-slug="{slug}"] a.preview')
    assert link.get_attribute("href") == record["url"]
    link.click()
    page.wait_for_url(record["url"].rstrip("/") + "/")

    assert page.title() == f"preview of {REPOSITORY} branch {BRANCH} at commit {SHA}"
    assert page.locator("h1").inner_text() == BRANCH
