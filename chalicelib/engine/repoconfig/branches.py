"""The one rule that says which branches get a preview, and why.

:func:`preview_verdict` is used by everything that decides it: the webhook intake
(chalicelib/handlers/webhooks.py, which applies the clause it can decide without reading
``branchenv.yml``: :func:`default_branch_verdict`), the target builder of converge
(chalicelib/engine/converge/targets.py) and ``branchenv plan``, which shares the target
builder. The rule, in order:

1. the repository's default branch (production) never gets a preview: the intake drops
   its webhooks before any ``branchenv.yml`` is read, so no file can admit it;
2. a branch no ``branches.include`` pattern matches gets none (built-in default ``**``);
3. a branch a ``branches.exclude`` pattern matches gets none (built-in default
   ``dependabot/**``; a file that sets ``exclude`` replaces it).

Every verdict carries a reason that says where the deciding rule came from: the built-in
default, or the ``branchenv.yml`` line that set the list. Patterns are gitignore-style
globs (:func:`~chalicelib.engine.repoconfig.globs.glob_match`). This module imports no
YAML: the intake, which must stay light, imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.engine.repoconfig.globs import glob_match
from chalicelib.engine.repoconfig.schema import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, FILE_NAME

BUILT_IN = "branchenv's built-in default"


@dataclass(frozen=True)
class BranchVerdict:
    """Whether ``branch`` gets a preview; ``why`` names the rule that decided and where it
    came from, ``reason`` is the sentence people read (the intake's answer to GitHub, the
    record's reason, Slack, ``branchenv plan``)."""

    branch: str
    wanted: bool
    why: str

    @property
    def reason(self) -> str:
        gets = "gets a preview" if self.wanted else "gets no preview"
        return f"branch {self.branch!r} {gets}: {self.why}"


@dataclass(frozen=True)
class BranchFilter:
    """The ``branches`` section of a ``branchenv.yml``: which branches get a preview.

    ``include_from`` and ``exclude_from`` say where each list was set (``branchenv.yml
    line 3``); None means the built-in default. Two filters with the same patterns are equal
    wherever the patterns were written."""

    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    include_from: str | None = field(default=None, compare=False)
    exclude_from: str | None = field(default=None, compare=False)

    def verdict(self, branch: str, *, default_branch: str | None) -> BranchVerdict:
        """:func:`preview_verdict` for this filter."""
        return preview_verdict(branch, self, default_branch=default_branch)

    def wants(self, branch: str, *, default_branch: str | None) -> bool:
        """True when ``branch`` should have a preview environment."""
        return self.verdict(branch, default_branch=default_branch).wanted


def default_branch_verdict(branch: str, default_branch: str | None) -> BranchVerdict | None:
    """The rule's first clause, which needs no ``branchenv.yml``: a verdict for the
    repository's default branch, None for any other branch."""
    if default_branch is None or branch != default_branch:
        return None
    return BranchVerdict(
        branch,
        False,
        f"it is the default branch (production), which by branchenv's built-in rule never "
        f"gets one, whatever {FILE_NAME} includes",
    )


def preview_verdict(
    branch: str, branches: BranchFilter, *, default_branch: str | None
) -> BranchVerdict:
    """Whether ``branch`` gets a preview under ``branches`` (a parsed ``branchenv.yml``,
    or ``BranchFilter()`` for a repository without one), and why."""
    verdict = default_branch_verdict(branch, default_branch)
    if verdict is not None:
        return verdict
    include_from = _where(branches.include_from, "include")
    included = next((p for p in branches.include if glob_match(p, branch)), None)
    if included is None:
        return BranchVerdict(
            branch, False, f"it matches no pattern of {include_from} {list(branches.include)}"
        )
    exclude_from = _where(branches.exclude_from, "exclude")
    excluded = next((p for p in branches.exclude if glob_match(p, branch)), None)
    if excluded is not None:
        return BranchVerdict(branch, False, f"{excluded!r} of {exclude_from} excludes it")
    return BranchVerdict(branch, True, f"it matches {included!r} of {include_from}")


def _where(source: str | None, key: str) -> str:
    """``branchenv.yml line 3: branches.exclude``, or the built-in default of that key."""
    if source is None:
        return f"{BUILT_IN} branches.{key} ({FILE_NAME} does not set it)"
    return f"{source}: branches.{key}"
