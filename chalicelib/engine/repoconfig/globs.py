"""Branch patterns: gitignore-style globs for ``branches`` and ``keep`` in ``branchenv.yml``."""

from __future__ import annotations

import re


def glob_match(pattern: str, branch: str) -> bool:
    """gitignore-like: ``*`` and ``?`` stay within a ``/`` segment, ``**`` crosses them
    (``dependabot/**`` matches ``dependabot/npm/x``; ``**/wip`` matches ``wip`` too)."""
    return _glob_regex(pattern).fullmatch(branch) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("/**", index) and index + 3 == len(pattern):
            parts.append("(?:/.*)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts), re.DOTALL)
