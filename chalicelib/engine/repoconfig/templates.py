"""The ``env`` templates of ``branchenv.yml``: the five placeholders and their rendering.

A template may use only ``${BRANCH}``, ``${SLUG}``, ``${SHA}``, ``${PREVIEW_URL}`` and
``${REPOSITORY}`` (``$${`` is a literal ``${``); nothing else is ever evaluated, and no
error shows the text of a template, which may hold a secret pasted by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from chalicelib.engine.repoconfig.model import RepoConfig
from chalicelib.engine.repoconfig.schema import ENV_NAME, FILE_NAME, ConfigError

PLACEHOLDERS = ("BRANCH", "SLUG", "SHA", "PREVIEW_URL", "REPOSITORY")
_TEMPLATE_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


def template_placeholders(template: str) -> list[str]:
    """The placeholders a template uses; ValueError naming the first bad one."""
    return [name for kind, name in _tokens(template) if kind == "placeholder"]


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders once (values are never expanded again); ``$${`` → ``${``."""
    pieces = []
    for kind, text in _tokens(template):
        pieces.append(values[text] if kind == "placeholder" else text)
    return "".join(pieces)


def _tokens(template: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        tokens.append(("text", template[position : match.start()]))
        position = match.end()
        token, name = match.group(0), match.group(1)
        if token == "$${":
            tokens.append(("text", "${"))
        elif name is None:
            raise ValueError("'${' without a closing '}' (write '$${' for a literal '${')")
        elif name not in PLACEHOLDERS:
            raise ValueError(_unknown_placeholder(name))
        else:
            tokens.append(("placeholder", name))
    tokens.append(("text", template[position:]))
    return tokens


def _unknown_placeholder(name: str) -> str:
    allowed = ", ".join("${" + p + "}" for p in PLACEHOLDERS)
    escape = "(write '$${' for a literal '${')"
    if ENV_NAME.match(name) and len(name) <= 40:
        return f"unknown placeholder ${{{name}}}: only {allowed} are allowed {escape}"
    # Not shown: the text inside the braces could be part of a secret.
    return f"expressions in '${{...}}' are not supported: only {allowed} are allowed {escape}"


def placeholder_values(
    *, branch: str, slug: str, sha: str, preview_url: str, repository: str
) -> dict[str, str]:
    """The value of each placeholder for one deployment."""
    return {
        "BRANCH": branch,
        "SLUG": slug,
        "SHA": sha,
        "PREVIEW_URL": preview_url,
        "REPOSITORY": repository,
    }


def render_env(config: RepoConfig, values: Mapping[str, str]) -> dict[str, str]:
    """The plain environment variables of ``config`` with placeholders filled in."""
    missing = [p for p in PLACEHOLDERS if p not in values]
    if missing:
        raise ValueError(f"no value for placeholder(s) {', '.join(missing)}")
    rendered = {}
    for name, template in config.env.items():
        try:
            rendered[name] = render_template(template, values)
        except ValueError as exc:
            raise ConfigError(f"{FILE_NAME}: env.{name}: {exc}") from None
    return rendered
