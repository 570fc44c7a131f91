"""The QA dashboard's views and service: what QA sees, who may see it, and escaping."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path
from string import Template

import pytest

from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore, Status, StoreError
from chalicelib.domain.names import names_for
from chalicelib.handlers.dashboard import (
    Access,
    Dashboard,
    Request,
    environment_json,
    human_duration,
    iso_time,
    render_page,
)
from chalicelib.handlers.dashboard.html_page import PAGE_TEMPLATE
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


def service(
    store: InMemoryEnvironmentStore, mode: str = "none", keys: tuple[str, ...] = ()
) -> Dashboard:
    return Dashboard(store, SETTINGS, Access(mode, lambda: keys), clock=lambda: NOW)


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
    assert "<script>" not in page
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
