"""Parsing ``branchenv.yml`` and the operator's common block into their dataclasses.

:func:`load_repo_config` reads a repository's file and merges the operator's common block
under it; :func:`parse_common` reads the common block alone. Both walk the YAML node tree
(never constructing arbitrary objects) so that every :class:`ConfigError` names the file,
the line and the key path, and neither ever puts a value from ``env`` or ``secrets`` into
an error message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chalicelib.domain.durations import parse_sleep_after_minutes
from chalicelib.domain.settings import Settings, SettingsError
from chalicelib.engine.repoconfig.branches import BranchFilter
from chalicelib.engine.repoconfig.model import (
    CommonConfig,
    RepoConfig,
    RepoDefaults,
    ServiceConfig,
    value_or_default,
)
from chalicelib.engine.repoconfig.schema import (
    ARN_FORMS,
    DEFAULT_EXCLUDE,
    DEFAULT_INCLUDE,
    ENV_NAME,
    FARGATE_CPU,
    FILE_NAME,
    MAX_FILE_BYTES,
    RESERVED_ENV,
    ConfigError,
    fargate_memory,
    is_secret_arn,
    parse_duration_hours,
)
from chalicelib.engine.repoconfig.templates import template_placeholders


def load_repo_config(text: str | None, *, defaults: RepoDefaults) -> RepoConfig:
    """Parse ``branchenv.yml`` (``None``: the repository has no such file) and merge the
    operator's common block under it; ConfigError naming line and key when invalid."""
    if text is None or not text.strip():
        return _merge_common(RepoConfig(), defaults.common)
    parser = _Parser(text, FILE_NAME)
    root = parser.root()
    config = parser.repo_config(root, defaults)
    return _merge_common(config, defaults.common)


def repo_defaults(settings: Settings) -> RepoDefaults:
    """The installation's defaults under every file; SettingsError if the common block
    (BRANCHENV_COMMON_CONFIG) is bad: the operator's mistake, not a repository's."""
    common = CommonConfig()
    if settings.common_config:
        try:
            common = parse_common(settings.common_config, source="BRANCHENV_COMMON_CONFIG")
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
    return RepoDefaults(default_cpu=settings.cpu, default_memory=settings.memory, common=common)


def parse_common(text: str, *, source: str) -> CommonConfig:
    """The operator's common block (YAML or JSON): only ``env`` and ``secrets``."""
    parser = _Parser(text, source)
    root = parser.root()
    if root is None:
        return CommonConfig()
    fields = parser.mapping(root, "", {"env": None, "secrets": None})
    env = parser.env(fields["env"]) if "env" in fields else {}
    secrets = parser.secrets(fields["secrets"]) if "secrets" in fields else {}
    parser.no_overlap(env, secrets, fields)
    return CommonConfig(env=env, secrets=secrets)


def _merge_common(config: RepoConfig, common: CommonConfig) -> RepoConfig:
    """Common env and secrets under the repository's: the repository wins on any name."""
    own = set(config.env) | set(config.secrets)
    env = {k: v for k, v in common.env.items() if k not in own} | dict(config.env)
    secrets = {k: v for k, v in common.secrets.items() if k not in own} | dict(config.secrets)
    return RepoConfig(
        branches=config.branches,
        service=config.service,
        env=env,
        secrets=secrets,
        ttl_hours=config.ttl_hours,
        slack_channel=config.slack_channel,
        keep=config.keep,
        sleep_after_minutes=config.sleep_after_minutes,
    )


TOP_LEVEL = ("branches", "service", "env", "secrets", "ttl", "sleep_after", "slack", "keep")
SERVICE_KEYS = ("container_port", "health_check_path", "cpu", "memory", "desired_count", "spot")


class _Parser:
    """Walks the YAML node tree so every error can name its line and key path."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    # -- errors
    def error(self, node: Node | None, path: str, problem: str) -> ConfigError:
        where = f" line {node.start_mark.line + 1}" if node is not None else ""
        key = f" {path}:" if path else ""
        return ConfigError(f"{self.source}{where}:{key} {problem}")

    def key_line(self, mapping: Node, key: str) -> str:
        """Where ``key`` of a mapping ``self.mapping`` checked is written, as reasons name
        it: ``branchenv.yml line 3``."""
        [key_node] = [k for k, _ in mapping.value if k.value == key]
        return f"{self.source} line {key_node.start_mark.line + 1}"

    # -- the document
    def root(self) -> Node | None:
        if len(self.text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            raise ConfigError(f"{self.source}: larger than {MAX_FILE_BYTES // 1024} KiB")
        try:
            node = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = exc.problem or exc.context or "syntax error"
            raise ConfigError(f"{self.source}{where}: not valid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.source}: not valid YAML ({exc.__class__.__name__})") from None
        return node

    def repo_config(self, root: Node | None, defaults: RepoDefaults) -> RepoConfig:
        if root is None:
            return RepoConfig()
        fields = self.mapping(root, "", dict.fromkeys(TOP_LEVEL))
        env = self.env(fields["env"]) if "env" in fields else {}
        secrets = self.secrets(fields["secrets"]) if "secrets" in fields else {}
        self.no_overlap(env, secrets, fields)
        return RepoConfig(
            branches=self.branches(fields.get("branches")),
            service=self.service(fields.get("service"), defaults),
            env=env,
            secrets=secrets,
            ttl_hours=self.ttl(fields["ttl"]) if "ttl" in fields else None,
            slack_channel=self.slack(fields["slack"]) if "slack" in fields else None,
            keep=self.globs(fields["keep"], "keep") if "keep" in fields else (),
            sleep_after_minutes=(
                self.sleep_after(fields["sleep_after"]) if "sleep_after" in fields else None
            ),
        )

    # -- shapes
    def mapping(
        self, node: Node, path: str, known: Mapping[str, Any] | None = None
    ) -> dict[str, Node]:
        """The keys of a mapping node, each a string, no duplicates, all known (if given)."""
        if not isinstance(node, MappingNode):
            raise self.error(node, path, f"must be a mapping, got {_kind(node)}")
        result: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                raise self.error(key_node, path, "keys must be plain names (no '<<' merges)")
            key = key_node.value
            key_path = f"{path}.{key}" if path else key
            if known is not None and key not in known:
                raise self.error(key_node, key_path, _unknown_key(key, known))
            if key in result:
                raise self.error(key_node, key_path, "appears twice")
            result[key] = value_node
        return result

    def scalar(self, node: Node, path: str) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.error(node, path, f"must be a single value, got {_kind(node)}")
        if not node.tag.startswith(_CORE_TAG):
            raise self.error(node, path, f"YAML tags such as {node.tag} are not supported")
        try:
            return yaml.SafeLoader("").construct_object(node)
        except (yaml.YAMLError, ValueError):
            raise self.error(node, path, f"cannot be read as {node.tag}") from None

    def string(self, node: Node, path: str) -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str) or not value:
            raise self.error(node, path, f"must be a non-empty string, got {_shown(node)}")
        return value

    def integer(self, node: Node, path: str, low: int, high: int) -> int:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(node, path, f"must be a whole number, got {_shown(node)}")
        if not low <= value <= high:
            raise self.error(node, path, f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, node: Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            raise self.error(node, path, f"must be true or false, got {_shown(node)}")
        return value

    def globs(self, node: Node, path: str) -> tuple[str, ...]:
        if isinstance(node, ScalarNode):
            return (self.string(node, path),)
        if not isinstance(node, SequenceNode):
            raise self.error(node, path, f"must be a list of branch patterns, got {_kind(node)}")
        return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(node.value))

    # -- sections
    def branches(self, node: Node | None) -> BranchFilter:
        if node is None:
            return BranchFilter()
        fields = self.mapping(node, "branches", {"include": None, "exclude": None})
        include = self.globs(fields["include"], "branches.include") if "include" in fields else None
        exclude = self.globs(fields["exclude"], "branches.exclude") if "exclude" in fields else None
        return BranchFilter(
            include=DEFAULT_INCLUDE if include is None else include,
            exclude=DEFAULT_EXCLUDE if exclude is None else exclude,
            include_from=self.key_line(node, "include") if include is not None else None,
            exclude_from=self.key_line(node, "exclude") if exclude is not None else None,
        )

    def service(self, node: Node | None, defaults: RepoDefaults) -> ServiceConfig:
        if node is None:
            return ServiceConfig()
        fields = self.mapping(node, "service", dict.fromkeys(SERVICE_KEYS))
        values: dict[str, Any] = {}
        if "container_port" in fields:
            port = self.integer(fields["container_port"], "service.container_port", 1, 65535)
            values["container_port"] = port
        if "health_check_path" in fields:
            values["health_check_path"] = self.health_path(fields["health_check_path"])
        if "cpu" in fields:
            values["cpu"] = self.cpu(fields["cpu"])
        if "memory" in fields:
            values["memory"] = self.integer(fields["memory"], "service.memory", 512, 30720)
        if "desired_count" in fields:
            count = self.integer(fields["desired_count"], "service.desired_count", 0, 10)
            values["desired_count"] = count
        if "spot" in fields:
            values["spot"] = self.boolean(fields["spot"], "service.spot")
        service = ServiceConfig(**values)
        self.check_size(service, fields, defaults)
        return service

    def health_path(self, node: Node) -> str:
        path = self.string(node, "service.health_check_path")
        if not path.startswith("/") or len(path) > 1024 or any(c.isspace() for c in path):
            raise self.error(
                node, "service.health_check_path", "must be a URL path starting with '/'"
            )
        return path

    def cpu(self, node: Node) -> int:
        value = self.scalar(node, "service.cpu")
        if isinstance(value, bool) or value not in FARGATE_CPU:
            allowed = ", ".join(str(c) for c in FARGATE_CPU)
            raise self.error(node, "service.cpu", f"must be one of {allowed}, got {_shown(node)}")
        cpu: int = value
        return cpu

    def check_size(
        self, service: ServiceConfig, fields: Mapping[str, Node], defaults: RepoDefaults
    ) -> None:
        """Fargate accepts only some cpu/memory pairs; say which memory fits the cpu."""
        if service.cpu is None and service.memory is None:
            return
        cpu = value_or_default(service.cpu, defaults.default_cpu)
        memory = value_or_default(service.memory, defaults.default_memory)
        allowed = fargate_memory(cpu)
        if memory in allowed:
            return
        node = fields.get("memory") or fields["cpu"]
        path = "service.memory" if "memory" in fields else "service.cpu"
        low, high, step = allowed[0], allowed[-1], allowed[1] - allowed[0]
        raise self.error(
            node,
            path,
            f"Fargate does not run cpu {cpu} with memory {memory}; with cpu {cpu} set memory "
            f"between {low} and {high} in steps of {step}",
        )

    def env(self, node: Node) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, value_node in self.mapping(node, "env").items():
            path = f"env.{name}"
            self.variable_name(value_node, name, path)
            # Never _shown(value_node) here: an env value may be a secret pasted by mistake.
            if not isinstance(value_node, ScalarNode) or value_node.tag == _NULL:
                raise self.error(
                    value_node, path, f'must be a single value (write {name}: "" for empty)'
                )
            if not value_node.tag.startswith(_CORE_TAG):
                raise self.error(
                    value_node, path, f"YAML tags such as {value_node.tag} are not supported"
                )
            template = value_node.value  # exactly as written: 8080, true, a URL...
            try:
                template_placeholders(template)
            except ValueError as exc:
                raise self.error(value_node, path, str(exc)) from None
            env[name] = template
        return env

    def secrets(self, node: Node) -> dict[str, str]:
        secrets: dict[str, str] = {}
        for name, value_node in self.mapping(node, "secrets").items():
            path = f"secrets.{name}"
            self.variable_name(value_node, name, path)
            value = self.scalar(value_node, path)
            if not isinstance(value, str) or not is_secret_arn(value):
                # Never echo the value: it may be the secret itself, pasted by mistake.
                raise self.error(value_node, path, f"must be {ARN_FORMS} (the value is not shown)")
            secrets[name] = value
        return secrets

    def variable_name(self, node: Node, name: str, path: str) -> None:
        if not ENV_NAME.match(name):
            raise self.error(node, path, "is not a valid variable name (letters, digits and '_')")
        if name in RESERVED_ENV:
            raise self.error(node, path, "is set by branchenv itself; choose another name")

    def no_overlap(
        self, env: Mapping[str, str], secrets: Mapping[str, str], fields: Mapping[str, Node]
    ) -> None:
        both = sorted(set(env) & set(secrets))
        if both:
            raise self.error(
                fields["secrets"], f"secrets.{both[0]}", "is also in env; keep only one"
            )

    def ttl(self, node: Node) -> float:
        value = self.scalar(node, "ttl")
        hours: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            hours = float(value)
        elif isinstance(value, str):
            hours = parse_duration_hours(value)
        if hours is None or not 0 < hours <= 24 * 365:
            raise self.error(
                node,
                "ttl",
                "must be a number of hours or a duration like 12h, 3d or 2w, up to a year, "
                f"got {_shown(node)}",
            )
        return hours

    def sleep_after(self, node: Node) -> float:
        value = self.scalar(node, "sleep_after")
        minutes: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            minutes = parse_sleep_after_minutes(str(value))
        elif isinstance(value, str):
            minutes = parse_sleep_after_minutes(value)
        if minutes is None:
            raise self.error(
                node,
                "sleep_after",
                "must be a duration like 30m, 2h or 1d (at least 1m, up to a year) or never, "
                f"got {_shown(node)}",
            )
        return minutes

    def slack(self, node: Node) -> str:
        fields = self.mapping(node, "slack", {"channel": None})
        if "channel" not in fields:
            raise self.error(node, "slack.channel", "is missing")
        return self.string(fields["channel"], "slack.channel")


_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_CORE_TAG = "tag:yaml.org,2002:"


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    kind = node.tag.rsplit(":", 1)[-1]
    return {"str": "a string", "int": "a number", "float": "a number", "bool": "true/false"}.get(
        kind, kind
    )


def _shown(node: Node) -> str:
    """A non-secret value as written, for errors in branches, service, ttl and slack."""
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        return _kind(node)
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    return repr(text) if node.tag == _STR else text


def _unknown_key(key: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return f"unknown key; {hint}"
