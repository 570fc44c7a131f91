"""branchenv.yml, read at the deployed sha, drives what converge makes (or refuses to)."""

from __future__ import annotations

import pytest

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.domain.settings import Settings
from tests.integration.harness import REPOSITORY, World, sha_of

BRANCH = "feature/login"


class FakeGitHubFiles:
    """branchenv.yml as GitHub would serve it, per repository and ref."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], str] = {}
        self.reads: list[tuple[str, str, str]] = []

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        self.reads.append((repository, path, ref))
        return self.files.get((repository, ref))


@pytest.fixture
def files() -> FakeGitHubFiles:
    return FakeGitHubFiles()


@pytest.fixture
def world(settings: Settings, clients: ClientFactory, files: FakeGitHubFiles) -> World:
    world = World(settings, clients)
    world.runtime.converger.config_source = files
    return world


def test_a_plain_token_variable_fails_with_a_readable_reason_and_no_resources(
    world: World, files: FakeGitHubFiles
) -> None:
    files.files[(REPOSITORY, sha_of(1))] = "env:\n  API_TOKEN: hunter2\n"
    world.push_image(sha_of(1))
    world.deliver(world.create(BRANCH))
    assert "dns_record" in world.kinds(BRANCH)

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "API_TOKEN" in env.reason and "secrets" in env.reason
    assert "hunter2" not in env.reason
    assert world.leftovers(BRANCH) == []


def test_an_invalid_file_names_the_line_and_key(world: World, files: FakeGitHubFiles) -> None:
    files.files[(REPOSITORY, sha_of(1))] = "service:\n  cpu: 300\n"
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.FAILED
    assert env.reason is not None and "line 2" in env.reason and "service.cpu" in env.reason
    assert world.leftovers(BRANCH) == []


def test_the_file_sets_size_port_and_variables_of_the_deployed_task(
    world: World, files: FakeGitHubFiles
) -> None:
    files.files[(REPOSITORY, sha_of(1))] = (
        "service:\n  container_port: 3000\n  cpu: 512\n  memory: 1024\n"
        "env:\n  API_URL: https://api.example.com/${SLUG}\n"
        "secrets:\n  DB_PASSWORD: arn:aws:ssm:us-east-1:123456789012:parameter/db\n"
    )
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DEPLOYING
    names = world.names(BRANCH)
    ecs = world.clients.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=names.task_family)["taskDefinition"]
    container = td["containerDefinitions"][0]
    assert (td["cpu"], td["memory"]) == ("512", "1024")
    assert container["portMappings"][0]["containerPort"] == 3000
    variables = {v["name"]: v["value"] for v in container["environment"]}
    assert variables["API_URL"] == f"https://api.example.com/{names.slug}"
    assert container["secrets"] == [
        {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}
    ]


def test_a_branch_excluded_by_the_file_gets_nothing(world: World, files: FakeGitHubFiles) -> None:
    files.files[(REPOSITORY, sha_of(1))] = "branches:\n  exclude: ['feature/**']\n"
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert env.reason is not None and "excludes" in env.reason
    assert env.reason == (
        "branch 'feature/login' gets no preview: 'feature/**' of branchenv.yml line 2: "
        "branches.exclude excludes it"
    )
    assert world.leftovers(BRANCH) == []


def test_a_branch_the_built_in_default_excludes_says_so_without_a_file(
    world: World, files: FakeGitHubFiles
) -> None:
    branch = "dependabot/npm_and_yarn/lodash-4.17.21"  # the repository has no branchenv.yml
    world.push_image(sha_of(1))

    world.deliver(world.push(branch, sha_of(1)))

    env = world.env(branch)
    assert env is not None and env.status == Status.DELETED
    assert env.reason == (
        f"branch {branch!r} gets no preview: 'dependabot/**' of branchenv's built-in default "
        "branches.exclude (branchenv.yml does not set it) excludes it"
    )
    assert world.leftovers(branch) == []


def test_a_repository_without_the_file_deploys_with_the_defaults(
    world: World, files: FakeGitHubFiles
) -> None:
    world.push_image(sha_of(1))

    world.deliver(world.push(BRANCH, sha_of(1)))

    assert world.env(BRANCH).status == Status.DEPLOYING  # type: ignore[union-attr]
    assert (REPOSITORY, "branchenv.yml", sha_of(1)) in files.reads
