"""branchenv.yml read once per sha, for converge and the reaper alike (RepoConfigSource)."""

from __future__ import annotations

import pytest

from chalicelib.domain.environments import Environment
from chalicelib.engine.converge import RepoConfigSource, RetryLater
from chalicelib.engine.repoconfig import RepoDefaults

SHA = "a" * 40
ENV = Environment(slug="feature-x", repository="o/r", branch="feature/x", desired_sha=SHA)


class Files:
    """GitHub's contents API for one file, counting what it is asked."""

    def __init__(self, text: str | None, fails: bool = False) -> None:
        self.text, self.fails = text, fails
        self.asked: list[tuple[str, str, str]] = []

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        self.asked.append((repository, path, ref))
        if self.fails:
            raise ConnectionError("GitHub answered 502")
        return self.text


def test_a_shas_file_is_read_once_and_parsed_with_the_operators_defaults() -> None:
    files = Files("ttl: 6h\nkeep: [feature/x]\n")
    source = RepoConfigSource(files, RepoDefaults())

    first, problem = source.repo_config(ENV)
    again, _ = source.repo_config(ENV)

    assert problem is None and first.ttl_hours == 6 and first.is_kept("feature/x")
    assert again == first
    assert files.asked == [("o/r", "branchenv.yml", SHA)]  # a sha's file never changes


def test_a_branch_without_a_sha_is_read_at_its_head_every_time() -> None:
    files = Files(None)
    source = RepoConfigSource(files, RepoDefaults())
    headless = Environment(slug="feature-x", repository="o/r", branch="feature/x")

    source.repo_config(headless)
    source.repo_config(headless)

    assert [ref for _, _, ref in files.asked] == ["feature/x", "feature/x"]


def test_an_invalid_file_gives_the_defaults_and_a_reason_naming_the_key() -> None:
    source = RepoConfigSource(Files("ttl: soon\n"), RepoDefaults())

    config, problem = source.repo_config(ENV)

    assert config.ttl_hours is None
    assert problem is not None and "ttl" in problem


def test_github_not_answering_is_a_wait_not_a_verdict_on_the_file() -> None:
    source = RepoConfigSource(Files("ttl: 6h\n", fails=True), RepoDefaults())

    with pytest.raises(RetryLater, match=r"could not read branchenv\.yml from GitHub"):
        source.repo_config(ENV)


def test_another_source_is_read_from_then_on() -> None:
    source = RepoConfigSource(Files("ttl: 6h\n"), RepoDefaults())
    source.repo_config(ENV)

    source.files = Files("ttl: 2h\n")

    assert source.repo_config(ENV)[0].ttl_hours == 2
