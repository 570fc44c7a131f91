"""Parsing environment variables one at a time, for :mod:`chalicelib.domain.settings`.

:class:`EnvReader` turns one ``BRANCHENV_*`` variable into a typed value and names the
variable in every error (:class:`SettingsError`), so an operator reads
"BRANCHENV_CPU must be a whole number, got 'lots'" instead of a traceback. A
:class:`Variable` (in a Settings field's metadata, made by :func:`variable`) says which
variable a field is read from and with which parser; the parsers below take the reader,
the variable's name and the field's default, so each default is written once, on the
field. Only ``Settings.from_environ`` uses them; no other module reads ``os.environ``.
It must never put the value of a secret (tokens, keys, webhook secrets) into an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.domain.names import MAX_HOST_HEADER, MAX_PREVIEW_DOMAIN, MIN_SLUG_LENGTH

PREFIX = "BRANCHENV_"
IMAGE_SOURCES = ("build", "ci", "retag")
ImageSource = Literal["build", "ci", "retag"]
_PORT_RANGE = re.compile(r"^(\d{1,5})\s*-\s*(\d{1,5})$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Listener:
    """One ALB listener of the pool that preview host-header rules are spread over."""

    listener_arn: str
    dns_name: str
    zone_id: str
    # The load balancer's Lambda target group served by app.py's ``waker``: a sleeping
    # environment's rule forwards there. A target group belongs to one load balancer
    # ("Target groups for your Application Load Balancers": a target group can be used by
    # one load balancer only), so each of the pool has its own. None: previews never sleep.
    waker_target_group_arn: str | None = None


class EnvReader:
    """Parses one variable at a time and names it in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(PREFIX + name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise SettingsError(f"{PREFIX}{name} is not set")
        return value

    def pattern(self, name: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self.required(name)
        if not pattern.match(value):
            raise SettingsError(f"{PREFIX}{name} must be {expected}, got {value!r}")
        return value

    def region(self) -> str:
        for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            value = self._environ.get(key, "").strip()
            if value:
                return value
        raise SettingsError("AWS_REGION is not set (nor AWS_DEFAULT_REGION)")

    def csv(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        raw = self.required(name) if required else (self.optional(name) or "")
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        if required and not items:
            raise SettingsError(f"{PREFIX}{name} must list at least one value")
        return items

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{PREFIX}{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, *, low: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} must be a number, got {raw!r}") from None
        if value < low:
            raise SettingsError(f"{PREFIX}{name} must be at least {low}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{PREFIX}{name} must be true or false, got {raw!r}")

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> Any:
        value = self.optional(name) or default
        if value not in allowed:
            raise SettingsError(
                f"{PREFIX}{name} must be one of {', '.join(allowed)}, got {value!r}"
            )
        return value

    def path(self, name: str, default: str) -> str:
        value = self.optional(name) or default
        if not value.startswith("/"):
            raise SettingsError(f"{PREFIX}{name} must start with '/', got {value!r}")
        return value

    def domain(self, name: str) -> str:
        value = self.required(name).rstrip(".").lower()
        labels = value.split(".")
        label = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
        if len(labels) < 2 or not all(label.match(x) for x in labels):
            raise SettingsError(
                f"{PREFIX}{name} must be a DNS name such as preview.example.com, got {value!r}"
            )
        if len(value) > MAX_PREVIEW_DOMAIN:
            # ALB host-header values are at most 128 characters (HostHeaderConditionConfig,
            # ELB API reference); chalicelib/domain/names.py keeps at least 16 for the slug.
            raise SettingsError(
                f"{PREFIX}{name} is {len(value)} characters long; the limit is "
                f"{MAX_PREVIEW_DOMAIN}, so that <slug>.<domain> fits the {MAX_HOST_HEADER} "
                "characters of a load balancer host-header rule with at least "
                f"{MIN_SLUG_LENGTH} left for the branch's slug: choose a shorter preview domain"
            )
        return value

    def port_range(self, name: str, default: tuple[int, int]) -> tuple[int, int]:
        """``<from>-<to>``, 1 <= from <= to <= 65535, such as 80-65535."""
        raw = self.optional(name)
        if raw is None:
            return default
        match = _PORT_RANGE.match(raw)
        low, high = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if not 1 <= low <= high <= 65535:
            raise SettingsError(
                f"{PREFIX}{name} must be a port range <from>-<to> with "
                f"1 <= from <= to <= 65535, such as {default[0]}-{default[1]}, got {raw!r}"
            )
        return low, high

    def positive_id(self, name: str) -> int | None:
        raw = self.optional(name)
        if raw is None:
            return None
        if not re.fullmatch(r"[0-9]+", raw) or int(raw) < 1:
            raise SettingsError(f"{PREFIX}{name} must be a positive whole number, got {raw!r}")
        return int(raw)

    def private_key(self, name: str) -> str | None:
        # Never echo this value in an error. A key pasted into one line keeps its "\n"s.
        text = self.optional(name)
        if text is None:
            return None
        if "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
        if not text.startswith("-----BEGIN") or "PRIVATE KEY-----" not in text:
            raise SettingsError(
                f"{PREFIX}{name} must be the GitHub App's private key in PEM form "
                "(-----BEGIN RSA PRIVATE KEY----- ...), as downloaded from the App's settings"
            )
        return text + "\n" if not text.endswith("\n") else text

    def secrets(self, current: str, previous: str) -> tuple[str, ...]:
        # Never echo these values in an error.
        return tuple(v for v in (self.optional(current), self.optional(previous)) if v)

    def arn_prefixes(self, name: str) -> tuple[str, ...]:
        prefixes = self.csv(name)
        for prefix in prefixes:
            if not re.match(r"^arn:aws[a-z-]*:(ssm|secretsmanager):", prefix):
                raise SettingsError(
                    f"{PREFIX}{name} must list SSM or Secrets Manager ARN prefixes such as "
                    f"arn:aws:ssm:us-east-1:123456789012:parameter/myapp/, got {prefix!r}"
                )
        return prefixes

    def dotted_names(self, name: str) -> tuple[str, ...]:
        names = self.csv(name)
        for dotted in names:
            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", dotted):
                raise SettingsError(
                    f"{PREFIX}{name} must list functions as package.module:function, got {dotted!r}"
                )
        return names

    def common_config(self, name: str) -> str | None:
        # Checked in full (and never echoed) by chalicelib.engine.repoconfig.parse_common.
        text = self.optional(name)
        if text is None:
            return None
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            raise SettingsError(f"{PREFIX}{name} must be YAML or JSON text") from None
        if not isinstance(data, dict) or not set(data) <= {"env", "secrets"}:
            raise SettingsError(f"{PREFIX}{name} must be a mapping with only env and secrets")
        return text

    def listeners(self, name: str) -> tuple[Listener, ...]:
        raw = self.required(name)
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"{PREFIX}{name} must be a JSON list of objects with "
                f"listener_arn, dns_name and zone_id ({exc.msg})"
            ) from None
        if not isinstance(items, list) or not items:
            raise SettingsError(f"{PREFIX}{name} must be a non-empty JSON list")
        listeners = []
        for index, item in enumerate(items):
            keys = ("listener_arn", "dns_name", "zone_id")
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) and item.get(k) for k in keys
            ):
                raise SettingsError(
                    f"{PREFIX}{name}[{index}] must have string values for {', '.join(keys)}"
                )
            waker = item.get("waker_target_group_arn")
            if waker is not None and not (isinstance(waker, str) and waker):
                raise SettingsError(
                    f"{PREFIX}{name}[{index}].waker_target_group_arn must be a target group ARN"
                )
            listeners.append(
                Listener(item["listener_arn"], item["dns_name"], item["zone_id"], waker or None)
            )
        return tuple(listeners)


Parse = Callable[[EnvReader, str, Any], Any]
"""Reads one variable: (reader, name without PREFIX, the field's default) -> value."""
VARIABLE = "branchenv.variable"


@dataclass(frozen=True)
class Variable:
    """Where one Settings field comes from: ``PREFIX + name`` (``name`` itself when not
    ``prefixed``), read by ``parse``."""

    name: str
    parse: Parse
    prefixed: bool = True

    @property
    def full_name(self) -> str:
        return PREFIX + self.name if self.prefixed else self.name


def variable(name: str, parse: Parse, *, prefixed: bool = True) -> dict[str, Variable]:
    """The metadata of a Settings field read from ``name`` by ``parse``."""
    return {VARIABLE: Variable(name, parse, prefixed)}


# -- parsers (a field without a default is required: its parser refuses a missing value)


def required(env: EnvReader, name: str, default: Any) -> str:
    return env.required(name)


def text(env: EnvReader, name: str, default: Any) -> Any:
    """The value, else the field's default (None for most)."""
    return env.optional(name) or default


def region(env: EnvReader, name: str, default: Any) -> str:
    return env.region()


def required_csv(env: EnvReader, name: str, default: Any) -> tuple[str, ...]:
    return env.csv(name, required=True)


def csv_set(env: EnvReader, name: str, default: Any) -> frozenset[str]:
    return frozenset(env.csv(name))


def boolean(env: EnvReader, name: str, default: Any) -> bool:
    return env.boolean(name, default)


def path(env: EnvReader, name: str, default: Any) -> str:
    return env.path(name, default)


def domain(env: EnvReader, name: str, default: Any) -> str:
    return env.domain(name)


def port_range(env: EnvReader, name: str, default: Any) -> tuple[int, int]:
    return env.port_range(name, default)


def positive_id(env: EnvReader, name: str, default: Any) -> int | None:
    return env.positive_id(name)


def private_key(env: EnvReader, name: str, default: Any) -> str | None:
    return env.private_key(name)


def with_previous(env: EnvReader, name: str, default: Any) -> tuple[str, ...]:
    """``name`` and ``name_PREVIOUS`` (during a rotation), those that are set."""
    return env.secrets(name, f"{name}_PREVIOUS")


def arn_prefixes(env: EnvReader, name: str, default: Any) -> tuple[str, ...]:
    return env.arn_prefixes(name)


def dotted_names(env: EnvReader, name: str, default: Any) -> tuple[str, ...]:
    return env.dotted_names(name)


def common_config(env: EnvReader, name: str, default: Any) -> str | None:
    return env.common_config(name)


def listeners(env: EnvReader, name: str, default: Any) -> tuple[Listener, ...]:
    return env.listeners(name)


def pattern(regex: re.Pattern[str], expected: str) -> Parse:
    def parse(env: EnvReader, name: str, default: Any) -> str:
        return env.pattern(name, regex, expected)

    return parse


def integer(low: int, high: int) -> Parse:
    def parse(env: EnvReader, name: str, default: Any) -> int:
        return int(env.integer(name, default, low=low, high=high))

    return parse


def number(low: float) -> Parse:
    def parse(env: EnvReader, name: str, default: Any) -> float:
        return env.number(name, default, low=low)

    return parse


def sleep_after(env: EnvReader, name: str, default: Any) -> float:
    """A duration of at least a minute (``30m``, ``2h``, a bare number of hours) or
    ``never``, in minutes (0: never)."""
    from chalicelib.domain.durations import parse_sleep_after_minutes

    raw = env.optional(name)
    if raw is None:
        return float(default)
    minutes = parse_sleep_after_minutes(raw)
    if minutes is None:
        raise SettingsError(
            f"{PREFIX}{name} must be a duration like 30m, 2h or 1d (at least 1m, up to a "
            f"year) or never, got {raw!r}"
        )
    return minutes


def choice(*allowed: str) -> Parse:
    def parse(env: EnvReader, name: str, default: Any) -> Any:
        return env.choice(name, allowed, default)

    return parse
