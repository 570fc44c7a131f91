"""The QA dashboard's views and service: what QA sees, who may see it, and escaping."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path
from string import Template

import pytest

from chalicelib.aws.errors import AwsError
from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore, Status, StoreError
from chalicelib.domain.messages import ConvergeRequest
from chalicelib.domain.names import names_for
from chalicelib.handlers.dashboard import (
    SLEEPING_TEXT,
    Access,
    Dashboard,
    Request,
    environment_json,
    human_duration,
    iso_time,
    page_script_hashes,
    render_page,
)
from chalicelib.handlers.dashboard.html_page import PAGE_TEMPLATE
from chalicelib.handlers.waker import WAKE_DEDUP_WINDOW_SECONDS
from tests.conftest import offline_settings

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20+00:00
SHA = "0123456789abcdef0123456789abcdef01234567"
KEY = "dashboard-key-1"
SETTINGS = offline_settings(dashboard_auth="none")
ROOT = Path(__file__).resolve().parents[2]


def make_env(branch: str = "feature-a", **changes: object) -> Environment:
    slug = names_for("demo", "acme/shop", branch, "preview.example.com").slug
    env = Environment(
        slug=slug,
        repository="acme/shop",
        branch=branch,
        desired_sha=SHA,
        deployed_sha=SHA,
        status=Status.READY,
        pusher="octocat",
        commit_url=f"https://github.com/acme/shop/commit/{SHA}",
        created_at=NOW - 3 * 3600,
        updated_at=NOW - 600,
        ready_at=NOW - 600,
    )
    return replace(env, **changes)  # type: ignore[arg-type]


def store_with(*envs: Environment) -> InMemoryEnvironmentStore:
    store = InMemoryEnvironmentStore()
    for env in envs:
        store.put(env)
    return store


class RecordingQueue:
    """The work queue as the dashboard sees it: records what it was sent."""

    def __init__(self, fails: bool = False) -> None:
        self.sent: list[tuple[dict[str, object], str, str | None]] = []
        self.fails = fails

    def send(
        self, message: dict[str, object], *, group_id: str, dedup_id: str | None = None
    ) -> str:
        if self.fails:
            raise AwsError("SendMessage failed: ServiceUnavailable", code="ServiceUnavailable")
        self.sent.append((message, group_id, dedup_id))
        return f"m-{len(self.sent)}"


def service(
    store: InMemoryEnvironmentStore,
    mode: str = "none",
    keys: tuple[str, ...] = (),
    queue: RecordingQueue | None = None,
) -> Dashboard:
    the_queue = queue or RecordingQueue()
    return Dashboard(
        store, SETTINGS, Access(mode, lambda: keys), clock=lambda: NOW, queue=lambda: the_queue
    )


class FailingStore(InMemoryEnvironmentStore):
    """A store whose table cannot be read (DynamoDB down, permissions missing)."""

    def scan(self) -> Iterator[Environment]:
        raise StoreError("Scan failed: AccessDeniedException")

    def get(self, slug: str) -> Environment | None:
        raise StoreError("GetItem failed: AccessDeniedException")


# ---------------------------------------------------------------- JSON view


def test_json_url_is_the_preview_host_of_the_branch() -> None:
    assert environment_json(make_env(), SETTINGS)["url"] == "https://feature-a.preview.example.com"


def test_json_url_uses_the_hashed_slug_for_a_branch_that_is_not_a_label() -> None:
    env = make_env("Feature/A")
    view = environment_json(env, SETTINGS)
    assert view["url"] == f"https://{env.slug}.preview.example.com"
    assert view["slug"] != "feature-a"


def test_json_has_the_fields_scripts_rely_on() -> None:
    view = environment_json(make_env(), SETTINGS)
    assert view["repository"] == "acme/shop"
    assert view["branch"] == "feature-a"
    assert view["status"] == "ready"
    assert view["sha"] == SHA
    assert view["updated_at"] == "2026-09-21T14:03:20+00:00"


def test_json_of_a_failed_environment_carries_its_reason() -> None:
    env = make_env(status=Status.FAILED, reason="the container exited with code 1")
    assert environment_json(env, SETTINGS)["reason"] == "the container exited with code 1"


def test_json_of_a_failed_environment_without_a_reason_says_where_to_look() -> None:
    view = environment_json(make_env(status=Status.FAILED, reason=None), SETTINGS)
    assert view["reason"] == "no reason was recorded; see the deploy logs"


def test_json_drops_a_commit_url_that_is_not_http() -> None:
    env = make_env(commit_url="javascript:alert(1)")
    assert environment_json(env, SETTINGS)["commit_url"] is None


def test_iso_time_of_an_unset_time_is_none() -> None:
    assert iso_time(0.0) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (45, "45s"),
        (61, "1m"),
        (3600, "1h"),
        (3 * 3600 + 300, "3h 5m"),
        (86400 * 2 + 3600 * 4, "2d 4h"),
    ],
)
def test_human_duration_rounds_down_to_two_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# ---------------------------------------------------------------- HTML page


def test_page_escapes_a_branch_named_script() -> None:
    page = render_page([make_env("<script>alert(1)</script>")], SETTINGS, NOW)
    assert page.count("<script>") == 1  # the page's own, whose hash the CSP allows
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_page_escapes_quotes_in_the_pusher_name() -> None:
    page = render_page([make_env(pusher='x" onmouseover="alert(1)')], SETTINGS, NOW)
    assert 'onmouseover="alert(1)"' not in page


def test_page_links_the_preview_url() -> None:
    page = render_page([make_env()], SETTINGS, NOW)
    assert 'href="https://feature-a.preview.example.com"' in page


def test_page_links_the_short_sha_to_the_commit() -> None:
    page = render_page([make_env()], SETTINGS, NOW)
    assert (
        f'href="https://github.com/acme/shop/commit/{SHA}" rel="noopener noreferrer">0123456<'
        in page
    )


def test_page_shows_no_link_for_a_javascript_commit_url() -> None:
    page = render_page([make_env(commit_url="javascript:alert(1)")], SETTINGS, NOW)
    assert "javascript:" not in page
    assert '<span class="sha">0123456</span>' in page


def test_page_shows_who_pushed_the_age_and_the_last_deploy() -> None:
    page = render_page([make_env()], SETTINGS, NOW)
    assert ">octocat<" in page
    assert ">3h<" in page
    assert "10m ago" in page


def test_page_shows_the_reason_of_a_failed_environment() -> None:
    env = make_env(status=Status.FAILED, reason="health check failed on / (HTTP 500)")
    assert "health check failed on / (HTTP 500)" in render_page([env], SETTINGS, NOW)


def test_page_without_environments_says_how_to_get_one() -> None:
    assert "No live environments. Push a branch to create one." in render_page([], SETTINGS, NOW)


def test_page_is_made_for_phones_and_refreshes_itself() -> None:
    page = render_page([make_env()], SETTINGS, NOW)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<meta http-equiv="refresh" content="15">' in page
    assert "@media (max-width: 640px)" in page


def test_page_shows_a_branch_with_template_syntax_as_it_is() -> None:
    page = render_page([make_env("fix/$body-${app}-{count}")], SETTINGS, NOW)
    assert '<span class="branch">fix/$body-${app}-{count}</span>' in page


def test_page_template_is_a_package_file_in_the_wheel_with_single_braces() -> None:
    folder = ROOT / "chalicelib" / "handlers" / "dashboard"
    text = (folder / PAGE_TEMPLATE).read_text(encoding="utf-8")
    assert "{{" not in text and "}}" not in text  # CSS is written as CSS
    placeholders = {m.group("braced") or m.group("named") for m in Template.pattern.finditer(text)}
    assert placeholders == {"refresh", "app", "count", "generated", "generated_iso", "body"}
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["chalicelib.handlers.dashboard"]
    assert any(fnmatch(PAGE_TEMPLATE, pattern) for pattern in package_data)


def test_page_loads_nothing_from_the_network() -> None:
    page = render_page([make_env()], SETTINGS, NOW)
    assert "<link" not in page
    assert "src=" not in page


# ---------------------------------------------------------------- service


def test_list_holds_live_environments_failed_included_deleted_excluded() -> None:
    store = store_with(
        make_env("ok"),
        make_env("broken", status=Status.FAILED, reason="build failed"),
        make_env("gone", status=Status.DELETED),
    )
    answer = service(store).environments(Request())
    body = json.loads(answer.body)
    assert answer.status == 200
    assert [e["branch"] for e in body["environments"]] == ["broken", "ok"]


def test_one_environment_includes_a_deleted_one() -> None:
    store = store_with(make_env("gone", status=Status.DELETED))
    answer = service(store).environment(Request(), "gone")
    assert answer.status == 200
    assert json.loads(answer.body)["status"] == "deleted"


def test_one_unknown_environment_is_404_json() -> None:
    answer = service(store_with()).environment(Request(), "nope")
    assert answer.status == 404
    assert "GET /api/environments" in json.loads(answer.body)["error"]


def test_one_environment_with_a_name_that_cannot_be_a_slug_is_404() -> None:
    answer = service(store_with()).environment(Request(), "Not_A/Slug")
    assert answer.status == 404


def test_page_is_html_and_lists_the_row() -> None:
    answer = service(store_with(make_env())).page(Request())
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'data-slug="feature-a"' in answer.body


def test_unreadable_store_answers_503_with_what_to_do() -> None:
    answer = service(FailingStore()).environments(Request())
    assert answer.status == 503
    assert "try again" in json.loads(answer.body)["error"]


def test_unreadable_store_answers_503_on_the_page() -> None:
    assert service(FailingStore()).page(Request()).status == 503


# ---------------------------------------------------------------- access


def test_api_key_mode_refuses_a_request_without_a_key() -> None:
    answer = service(store_with(), "api_key", (KEY,)).environments(Request())
    assert answer.status == 401
    assert "?key=" in json.loads(answer.body)["error"]


def test_api_key_mode_refuses_a_wrong_key() -> None:
    request = Request(headers={"x-api-key": "guess"})
    assert service(store_with(), "api_key", (KEY,)).environments(request).status == 401


def test_api_key_mode_refusal_never_echoes_the_key() -> None:
    answer = service(store_with(), "api_key", (KEY,)).page(Request(query={"key": "guess"}))
    assert KEY not in answer.body
    assert "guess" not in answer.body


def test_api_key_mode_accepts_the_header() -> None:
    request = Request(headers={"x-api-key": KEY})
    assert service(store_with(), "api_key", (KEY,)).environments(request).status == 200


def test_api_key_mode_accepts_the_query_parameter() -> None:
    request = Request(query={"key": KEY})
    assert service(store_with(), "api_key", (KEY,)).page(request).status == 200


def test_api_key_mode_accepts_the_previous_key_during_rotation() -> None:
    request = Request(headers={"x-api-key": "old-key"})
    assert service(store_with(), "api_key", (KEY, "old-key")).environments(request).status == 200


def test_api_key_mode_without_a_configured_key_fails_closed() -> None:
    answer = service(store_with(), "api_key", ()).environments(Request(query={"key": ""}))
    assert answer.status == 503
    assert "BRANCHENV_DASHBOARD_API_KEY_ARN" in json.loads(answer.body)["error"]


def test_iam_mode_refuses_a_request_api_gateway_did_not_authenticate() -> None:
    answer = service(store_with(), "iam").environments(Request(context={"identity": {}}))
    assert answer.status == 403
    assert "AWS_IAM" in json.loads(answer.body)["error"]


def test_iam_mode_accepts_an_authenticated_caller() -> None:
    identity = {"userArn": "arn:aws:iam::123456789012:user/qa"}
    request = Request(context={"identity": identity})
    assert service(store_with(), "iam").environments(request).status == 200


def test_a_refused_request_does_not_read_the_store() -> None:
    assert service(FailingStore(), "api_key", (KEY,)).environments(Request()).status == 401


# ---------------------------------------------------------------- sleeping and waking


def sleeping(branch: str = "feature-a", **changes: object) -> Environment:
    return make_env(branch, status=Status.SLEEPING, asleep=True, slept_at=NOW - 900, **changes)


def test_json_of_a_sleeping_environment_says_sleeping_and_keeps_its_url() -> None:
    view = environment_json(sleeping(), SETTINGS)
    assert (view["status"], view["url"]) == ("sleeping", "https://feature-a.preview.example.com")


def test_page_shows_a_sleeping_row_with_its_badge_text_and_wake_button() -> None:
    page = render_page([sleeping()], SETTINGS, NOW)
    assert '<span class="badge sleeping">sleeping</span>' in page
    assert SLEEPING_TEXT == "sleeping: wakes on the first request"
    assert SLEEPING_TEXT in page
    assert '<button type="button" class="wake" data-wake="feature-a"' in page


def test_the_wake_button_is_only_on_sleeping_rows() -> None:
    others = [
        make_env("ok"),
        make_env("broken", status=Status.FAILED, reason="build failed"),
        make_env("building", status=Status.BUILDING),
        make_env("going", status=Status.READY, asleep=True),  # the sleep is under way
        make_env("leaving", status=Status.DELETING, asleep=True),
    ]
    page = render_page([*others, sleeping("nap")], SETTINGS, NOW)
    assert re.findall(r'data-wake="([^"]*)"', page) == [sleeping("nap").slug]


def test_a_sleeping_branch_named_script_is_escaped_in_its_wake_button() -> None:
    env = sleeping('"><script>alert(1)</script>')
    page = render_page([env], SETTINGS, NOW)
    assert page.count("<script>") == 1
    assert 'aria-label="Wake &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert f'data-wake="{env.slug}"' in page


def test_the_page_csp_allows_exactly_its_own_script() -> None:
    answer = service(store_with(sleeping())).page(Request())
    [script] = re.findall(r"<script>(.*?)</script>", answer.body, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in answer.headers["Content-Security-Policy"].split(";")
    )
    assert page_script_hashes() == (f"sha256-{digest}",)
    assert policy["script-src"] == f"'sha256-{digest}'"  # no 'unsafe-inline', no other script
    assert policy["connect-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert policy["form-action"] == "'none'"


def test_the_error_page_runs_no_script() -> None:
    answer = service(store_with(), "api_key", (KEY,)).page(Request())
    assert answer.status == 401
    assert "script-src" not in answer.headers["Content-Security-Policy"]


def test_wake_of_a_sleeping_environment_queues_one_wake_and_answers_202() -> None:
    queue = RecordingQueue()
    env = sleeping()
    answer = service(store_with(env), queue=queue).wake(Request(), env.slug)
    body = json.loads(answer.body)
    assert answer.status == 202
    assert answer.headers["Content-Type"] == "application/json"
    assert body["wake"] == "requested"
    assert body["environment"]["status"] == "sleeping"
    assert "waking up feature-a" in body["message"]
    window = int(NOW // WAKE_DEDUP_WINDOW_SECONDS)
    expected = ConvergeRequest(slug=env.slug, cause="wake").to_message()
    assert queue.sent == [(expected, env.slug, f"wake-{env.slug}-{window}")]


def test_wake_writes_no_record() -> None:
    store = store_with(sleeping())
    before = store.get("feature-a")
    service(store).wake(Request(), "feature-a")
    assert store.get("feature-a") == before


def test_wake_of_an_environment_on_its_way_to_sleep_is_accepted() -> None:
    env = make_env(status=Status.READY, asleep=True)
    assert service(store_with(env)).wake(Request(), env.slug).status == 202


@pytest.mark.parametrize(
    "env",
    [
        make_env(status=Status.READY),
        make_env(status=Status.BUILDING),
        make_env(status=Status.FAILED, reason="build failed"),
        make_env(status=Status.DELETING, asleep=True),
    ],
    ids=["ready", "building", "failed", "deleting"],
)
def test_wake_of_an_environment_that_is_not_sleeping_is_409(env: Environment) -> None:
    queue = RecordingQueue()
    answer = service(store_with(env), queue=queue).wake(Request(), env.slug)
    body = json.loads(answer.body)
    assert answer.status == 409
    assert body["status"] == env.status.value
    assert "not sleeping" in body["error"]
    assert queue.sent == []


@pytest.mark.parametrize("slug", ["never-was", "gone", "Not_A/Slug"])
def test_wake_of_no_live_environment_is_404(slug: str) -> None:
    queue = RecordingQueue()
    store = store_with(make_env("gone", status=Status.DELETED, asleep=True))
    answer = service(store, queue=queue).wake(Request(), slug)
    assert answer.status == 404
    assert "GET /api/environments" in json.loads(answer.body)["error"]
    assert queue.sent == []


def test_wake_in_api_key_mode_needs_the_key_and_reads_nothing_without_it() -> None:
    queue = RecordingQueue()
    refused = service(FailingStore(), "api_key", (KEY,), queue).wake(Request(), "feature-a")
    assert refused.status == 401
    assert queue.sent == []
    request = Request(headers={"x-api-key": KEY})
    accepted = service(store_with(sleeping()), "api_key", (KEY,), queue).wake(request, "feature-a")
    assert accepted.status == 202
    assert len(queue.sent) == 1


def test_wake_in_iam_mode_refuses_a_caller_api_gateway_did_not_authenticate() -> None:
    answer = service(store_with(sleeping()), "iam").wake(Request(), "feature-a")
    assert answer.status == 403


def test_wake_when_the_queue_refuses_answers_503_with_what_to_do() -> None:
    answer = service(store_with(sleeping()), queue=RecordingQueue(fails=True)).wake(
        Request(), "feature-a"
    )
    assert answer.status == 503
    assert "try again" in json.loads(answer.body)["error"]


def test_wake_when_the_store_cannot_be_read_answers_503() -> None:
    assert service(FailingStore()).wake(Request(), "feature-a").status == 503


def test_a_dashboard_without_a_queue_says_it_cannot_wake() -> None:
    dashboard = Dashboard(store_with(sleeping()), SETTINGS, Access("none", lambda: ()))
    answer = dashboard.wake(Request(), "feature-a")
    assert answer.status == 503
    assert "work queue" in json.loads(answer.body)["error"]
