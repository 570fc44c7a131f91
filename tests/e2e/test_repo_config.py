"""branchenv.yml end to end: put in the GitHub stand-in, read at the pushed sha by the
worker, checked before any AWS change."""

from __future__ import annotations

from chalicelib.local.demo import audit
from chalicelib.local.stack import LocalStack
from chalicelib.tools.commands.webhook import fake_sha
from tests.e2e.conftest import REPOSITORY, get_json, push, slug_of, wait_for_environment


def put_config(stack: LocalStack, content: str, ref: str) -> None:
    status, _ = get_json(
        f"{stack.stub_url}/_local/github/files",
        method="PUT",
        body={"repository": REPOSITORY, "path": "branchenv.yml", "content": content, "ref": ref},
    )
    assert status == 200


def test_a_plain_api_token_variable_fails_readably_with_no_aws_resources(
    stack: LocalStack,
) -> None:
    sha = fake_sha("token")
    put_config(stack, "env:\n  API_TOKEN: do-not-show-me\n", sha)
    push(stack, "feature/token", sha)
    slug = slug_of(stack, "feature/token")

    record = wait_for_environment(stack, slug, lambda r: r.get("status") == "failed")

    assert "API_TOKEN" in record["reason"]
    assert "secrets" in record["reason"]
    assert "do-not-show-me" not in str(record)
    assert audit(stack, slug) == []


def test_the_file_at_the_pushed_sha_sets_the_preview_variables(stack: LocalStack) -> None:
    sha = fake_sha("configured")
    put_config(stack, "env:\n  GREETING: hello ${BRANCH}\n", sha)
    push(stack, "feature/configured", sha)
    slug = slug_of(stack, "feature/configured")

    record = wait_for_environment(stack, slug, lambda r: r.get("status") == "ready")

    assert record["status"] == "ready"
    assert stack.clients is not None
    ecs = stack.clients.client("ecs")
    family = f"{stack.runtime.settings.app_name}-{slug}"
    definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    variables = {
        v["name"]: v["value"] for v in definition["containerDefinitions"][0]["environment"]
    }
    assert variables["GREETING"] == "hello feature/configured"
