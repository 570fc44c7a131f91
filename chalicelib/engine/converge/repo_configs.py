"""The one reader of a branch's ``branchenv.yml``, shared by converge and the reaper.

:class:`RepoConfigSource` reads the file at the environment's desired sha through one
:class:`ConfigSource` (GitHub's contents API), parses it with the operator's defaults and
caches it per sha while the Lambda is warm (a sha's file never changes; a branch's does).
The target builder asks it what a converge aims at; the reaper asks it for a branch's
``ttl`` and ``keep`` when the record does not carry them yet. The runtime builds one and
hands it to both.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.domain.environments import Environment
from chalicelib.engine.converge.model import RetryLater
from chalicelib.engine.repoconfig import (
    FILE_NAME,
    ConfigError,
    RepoConfig,
    RepoDefaults,
    load_repo_config,
)


class ConfigSource(Protocol):
    """Where branchenv.yml is read at a sha (GitHub)."""

    def file_contents(self, repository: str, path: str, ref: str) -> str | None: ...


class RepoConfigSource:
    """A branch's branchenv.yml, parsed, from one file source (None: no file anywhere)."""

    def __init__(self, files: ConfigSource | None, defaults: RepoDefaults) -> None:
        self.defaults = defaults
        self._files = files
        self._texts: dict[tuple[str, str], str | None] = {}

    @property
    def files(self) -> ConfigSource | None:
        return self._files

    @files.setter
    def files(self, files: ConfigSource | None) -> None:
        """Read from another source from now on (what was cached came from the old one)."""
        self._files = files
        self._texts.clear()

    def repo_config(self, env: Environment) -> tuple[RepoConfig, str | None]:
        """The branch's branchenv.yml at the desired sha (defaults when there is none),
        or the defaults and the reason the file cannot be used. GitHub failing to answer
        is a wait (:class:`RetryLater`), never a verdict on the file."""
        text = None
        if self._files is not None and env.desired == "present":
            ref = env.desired_sha or env.branch
            key = (env.repository, ref)
            if key not in self._texts:
                try:
                    text = self._files.file_contents(env.repository, FILE_NAME, ref)
                except Exception as exc:
                    raise RetryLater(f"could not read {FILE_NAME} from GitHub: {exc}") from exc
                if env.desired_sha:  # a sha's file never changes; a branch's does
                    self._texts[key] = text
            else:
                text = self._texts[key]
        try:
            return load_repo_config(text, defaults=self.defaults), None
        except ConfigError as exc:
            return load_repo_config(None, defaults=self.defaults), str(exc)
