"""The dashboard routes through the real Chalice app: GET /, /api/environments, and one,
and POST /api/environments/{slug}/wake.

Settings come from environment variables exactly as the Lambda reads them; the key in
Secrets Manager and the work queue a wake goes to live in moto.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
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
    assert page.count("<script>") == 1  # the page's own, allowed by its hash in the CSP
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


# ---------------------------------------------------------------- waking a sleeping preview


def sleeping(slug: str, **changes: object) -> Environment:
    values: dict[str, object] = {
        "status": Status.SLEEPING,
        "asleep": True,
        "slept_at": 1_790_001_000.0,
        **changes,
    }
    return ready(slug, **values)


def work_queue(clients: ClientFactory) -> str:
    """The installation's FIFO work queue, in moto; returns its URL."""
    url = clients.client("sqs").create_queue(
        QueueName="demo-work.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    return str(url)


def queued(clients: ClientFactory, url: str) -> list[dict[str, object]]:
    answer = clients.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"]
    )
    return [
        {"body": json.loads(m["Body"]), "group": m["Attributes"]["MessageGroupId"]}
        for m in answer.get("Messages", [])
    ]


@pytest.fixture
def queue_url(clients: ClientFactory) -> str:
    return work_queue(clients)


@pytest.fixture
def waking_client(
    clients: ClientFactory, store: InMemoryEnvironmentStore, queue_url: str
) -> Iterator[Client]:
    settings = settings_with(dashboard_auth="none", queue_url=queue_url)
    with client_for(settings, store, clients=clients) as client:
        yield client
    app_module.use_runtime(None)


def test_wake_of_a_sleeping_preview_answers_202_and_puts_a_wake_on_the_queue(
    waking_client: Client, store: InMemoryEnvironmentStore, clients: ClientFactory, queue_url: str
) -> None:
    before = store.put(sleeping("feature-a"))
    response = waking_client.http.post("/api/environments/feature-a/wake")
    body = json.loads(response.body)
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/json"
    assert body["wake"] == "requested"
    assert body["environment"]["url"] == "https://feature-a.preview.example.com"
    assert queued(clients, queue_url) == [
        {
            "body": {"type": "converge", "slug": "feature-a", "cause": "wake", "detail": {}},
            "group": "feature-a",
        }
    ]
    assert store.get("feature-a") == before  # no record write


def test_two_wakes_in_a_row_send_one_message(
    waking_client: Client, store: InMemoryEnvironmentStore, clients: ClientFactory, queue_url: str
) -> None:
    store.put(sleeping("feature-a"))
    first = waking_client.http.post("/api/environments/feature-a/wake")
    second = waking_client.http.post("/api/environments/feature-a/wake")
    assert (first.status_code, second.status_code) == (202, 202)
    assert len(queued(clients, queue_url)) == 1  # the FIFO queue dropped the repeat


def test_wake_of_a_ready_preview_is_409_and_queues_nothing(
    waking_client: Client, store: InMemoryEnvironmentStore, clients: ClientFactory, queue_url: str
) -> None:
    store.put(ready("feature-a"))
    response = waking_client.http.post("/api/environments/feature-a/wake")
    assert response.status_code == 409
    assert json.loads(response.body)["status"] == "ready"
    assert queued(clients, queue_url) == []


def test_wake_of_an_unknown_or_deleted_preview_is_404(
    waking_client: Client, store: InMemoryEnvironmentStore, clients: ClientFactory, queue_url: str
) -> None:
    store.put(sleeping("gone", status=Status.DELETED))
    for slug in ("never-was", "gone"):
        response = waking_client.http.post(f"/api/environments/{slug}/wake")
        assert response.status_code == 404
        assert slug in json.loads(response.body)["error"]
    assert queued(clients, queue_url) == []


def test_wake_in_api_key_mode_is_refused_without_the_key(
    clients: ClientFactory, store: InMemoryEnvironmentStore, queue_url: str
) -> None:
    store.put(sleeping("feature-a"))
    settings = settings_with(dashboard_auth="api_key", dashboard_api_key=KEY, queue_url=queue_url)
    with client_for(settings, store, clients=clients) as client:
        without = client.http.post("/api/environments/feature-a/wake")
        wrong = client.http.post("/api/environments/feature-a/wake", headers={"X-Api-Key": "x"})
        nothing_yet = queued(clients, queue_url)
        header = client.http.post("/api/environments/feature-a/wake", headers={"X-Api-Key": KEY})
        query = client.http.post(f"/api/environments/feature-a/wake?key={KEY}")
    app_module.use_runtime(None)
    assert (without.status_code, wrong.status_code) == (401, 401)
    assert KEY not in without.body.decode() + wrong.body.decode()
    assert nothing_yet == []
    assert (header.status_code, query.status_code) == (202, 202)


def test_the_page_shows_the_wake_button_only_on_sleeping_rows_with_the_branch_escaped(
    waking_client: Client, store: InMemoryEnvironmentStore
) -> None:
    store.put(ready("awake"))
    store.put(sleeping("nap", branch='fix/"<b>nap</b>'))
    response = waking_client.http.get("/")
    page = response.body.decode()
    assert re.findall(r'data-wake="([^"]*)"', page) == ["nap"]
    assert "sleeping: wakes on the first request" in page
    assert 'aria-label="Wake fix/&quot;&lt;b&gt;nap&lt;/b&gt;"' in page
    assert "<b>nap" not in page
    [script] = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in response.headers["Content-Security-Policy"]
