"""The dashboard routes through the real Chalice app: GET /, /api/environments, and one.

Settings come from environment variables exactly as the Lambda reads them; the key in
Secrets Manager lives in moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from chalice.test import Client

import app as app_module
from app import app
from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Environment, InMemoryEnvironmentStore, Status
from chalicelib.domain.settings import Settings
from chalicelib.runtime import Runtime

REGION = "us-east-1"
SHA = "89abcdef0123456789abcdef0123456789abcdef"
KEY = "qa-dashboard-key"
BASE_ENVIRON = {
    "AWS_REGION": REGION,
    "BRANCHENV_APP_NAME": "demo",
    "BRANCHENV_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/demo-work.fifo",
    "BRANCHENV_TABLE": "demo-environments",
    "BRANCHENV_CLUSTER": "demo",
    "BRANCHENV_VPC_ID": "vpc-1",
    "BRANCHENV_SUBNETS": "subnet-1",
    "BRANCHENV_SECURITY_GROUPS": "sg-1",
    "BRANCHENV_LISTENERS": json.dumps(
        [{"listener_arn": "arn:listener", "dns_name": "alb.example.com", "zone_id": "Z1"}]
    ),
    "BRANCHENV_HOSTED_ZONE_ID": "Z2",
    "BRANCHENV_PREVIEW_DOMAIN": "preview.example.com",
    "BRANCHENV_ECR_REPOSITORY": "demo",
    "BRANCHENV_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/demo-task-execution",
    "BRANCHENV_CODEBUILD_PROJECT": "demo-build",
}


def settings_with(**extra: str) -> Settings:
    environ = dict(BASE_ENVIRON)
    environ.update({f"BRANCHENV_{k.upper()}": v for k, v in extra.items()})
    return Settings.from_environ(environ)


def ready(slug: str, **changes: object) -> Environment:
    """A ready record for the branch named like its slug, unless ``changes`` say otherwise."""
    values: dict[str, object] = {
        "slug": slug,
        "repository": "acme/shop",
        "branch": slug,
        "desired_sha": SHA,
        "deployed_sha": SHA,
        "status": Status.READY,
        "pusher": "octocat",
        "commit_url": f"https://github.com/acme/shop/commit/{SHA}",
        "created_at": 1_790_000_000.0,
        "updated_at": 1_790_000_600.0,
        "ready_at": 1_790_000_600.0,
    }
    values.update(changes)
    return Environment(**values)  # type: ignore[arg-type]


@pytest.fixture
def store() -> InMemoryEnvironmentStore:
    return InMemoryEnvironmentStore()


def client_for(settings: Settings, store: InMemoryEnvironmentStore, **kwargs: object) -> Client:
    app_module.use_runtime(Runtime(settings, store=store, **kwargs))  # type: ignore[arg-type]
    return Client(app)


@pytest.fixture
def open_client(store: InMemoryEnvironmentStore) -> Iterator[Client]:
    with client_for(settings_with(dashboard_auth="none"), store) as client:
        yield client
    app_module.use_runtime(None)


@pytest.fixture
def key_client(store: InMemoryEnvironmentStore) -> Iterator[Client]:
    settings = settings_with(dashboard_auth="api_key", dashboard_api_key=KEY)
    with client_for(settings, store) as client:
        yield client
    app_module.use_runtime(None)


def test_page_lists_a_ready_environment(
    open_client: Client, store: InMemoryEnvironmentStore
) -> None:
    store.put(ready("feature-a"))
    response = open_client.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'href="https://feature-a.preview.example.com"' in response.body.decode()


def test_page_escapes_a_branch_named_script(
    open_client: Client, store: InMemoryEnvironmentStore
) -> None:
    store.put(ready("script-b", branch="<script>"))
    page = open_client.http.get("/").body.decode()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_page_tells_the_browser_not_to_send_the_url_on(open_client: Client) -> None:
    response = open_client.http.get("/")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_api_lists_live_environments_with_failed_ones(
    open_client: Client, store: InMemoryEnvironmentStore
) -> None:
    store.put(ready("feature-a"))
    store.put(ready("broken", status=Status.FAILED, reason="image not found in ECR"))
    store.put(ready("gone", status=Status.DELETED))
    response = open_client.http.get("/api/environments")
    environments = json.loads(response.body)["environments"]
    assert response.status_code == 200
    assert [(e["slug"], e["status"]) for e in environments] == [
        ("broken", "failed"),
        ("feature-a", "ready"),
    ]
    assert environments[0]["reason"] == "image not found in ECR"


def test_api_item_shape(open_client: Client, store: InMemoryEnvironmentStore) -> None:
    store.put(ready("feature-a"))
    item = json.loads(open_client.http.get("/api/environments").body)["environments"][0]
    assert {k: item[k] for k in ("repository", "branch", "slug", "url", "status", "sha")} == {
        "repository": "acme/shop",
        "branch": "feature-a",
        "slug": "feature-a",
        "url": "https://feature-a.preview.example.com",
        "status": "ready",
        "sha": SHA,
    }
    assert item["updated_at"] == "2026-09-21T14:23:20+00:00"


def test_api_one_returns_a_deleted_environment(
    open_client: Client, store: InMemoryEnvironmentStore
) -> None:
    store.put(ready("gone", status=Status.DELETED))
    response = open_client.http.get("/api/environments/gone")
    assert response.status_code == 200
    assert json.loads(response.body)["status"] == "deleted"


def test_api_one_unknown_is_404_json(open_client: Client) -> None:
    response = open_client.http.get("/api/environments/never-was")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert "never-was" in json.loads(response.body)["error"]


def test_api_key_mode_refuses_without_the_key(key_client: Client) -> None:
    response = key_client.http.get("/api/environments")
    assert response.status_code == 401
    assert "X-Api-Key" in json.loads(response.body)["error"]


def test_api_key_mode_accepts_the_header(key_client: Client) -> None:
    response = key_client.http.get("/api/environments", headers={"X-Api-Key": KEY})
    assert response.status_code == 200


def test_api_key_mode_page_accepts_the_query_key(
    key_client: Client, store: InMemoryEnvironmentStore
) -> None:
    store.put(ready("feature-a"))
    response = key_client.http.get(f"/?key={KEY}")
    assert response.status_code == 200
    assert 'data-slug="feature-a"' in response.body.decode()


def test_api_key_mode_page_refusal_is_html(key_client: Client) -> None:
    response = key_client.http.get("/?key=wrong")
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_iam_mode_refuses_a_caller_api_gateway_did_not_sign_in(
    store: InMemoryEnvironmentStore,
) -> None:
    with client_for(settings_with(dashboard_auth="iam"), store) as client:
        response = client.http.get("/api/environments")
    app_module.use_runtime(None)
    assert response.status_code == 403


def test_api_key_mode_reads_the_key_from_secrets_manager(
    clients: ClientFactory, store: InMemoryEnvironmentStore
) -> None:
    arn = clients.client("secretsmanager").create_secret(
        Name="demo/dashboard-key", SecretString=json.dumps([KEY, "previous-key"])
    )["ARN"]
    settings = settings_with(dashboard_auth="api_key", dashboard_api_key_arn=arn)
    with client_for(settings, store, clients=clients) as client:
        current = client.http.get("/api/environments", headers={"X-Api-Key": KEY})
        previous = client.http.get("/api/environments", headers={"X-Api-Key": "previous-key"})
        wrong = client.http.get("/api/environments", headers={"X-Api-Key": "nope"})
    app_module.use_runtime(None)
    assert (current.status_code, previous.status_code, wrong.status_code) == (200, 200, 401)


def test_api_key_mode_with_a_missing_secret_answers_503(
    clients: ClientFactory, store: InMemoryEnvironmentStore
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/missing-AbCdEf"
    settings = settings_with(dashboard_auth="api_key", dashboard_api_key_arn=arn)
    with client_for(settings, store, clients=clients) as client:
        response = client.http.get("/api/environments", headers={"X-Api-Key": KEY})
    app_module.use_runtime(None)
    assert response.status_code == 503
    assert "try again" in json.loads(response.body)["error"]
