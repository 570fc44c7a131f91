"""Policy checks on the rendered ECS requests, run before any AWS change.

:func:`check` reads exactly the RegisterTaskDefinition and CreateService request dicts that
converge would send (see chalicelib/engine/taskdef.py), so what is checked is what is deployed.
Each failure is a :class:`Violation` whose message tells a developer what to change.
Operators add their own checks: plain functions with the signature of :func:`check`,
named in BRANCHENV_POLICY_CHECKS as ``package.module:function``. :class:`OperatorPolicy`
is the installation's side: limits, the open port range and those checks, built once from
settings; it depends on the parsed file (chalicelib/engine/repoconfig), never the reverse.

This module must never call AWS, never change a request, and never put the value of an
environment variable into a message (it may be a secret set by mistake).
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.settings import Settings, SettingsError, default_of
from chalicelib.engine.repoconfig import RepoConfig

SECRET_LIKE_NAMES = ("*_TOKEN", "*_SECRET", "*PASSWORD*", "*_KEY")
HOST_NAMESPACES = ("networkMode", "pidMode", "ipcMode")


@dataclass(frozen=True)
class Violation:
    """One failed check: which check, and what to do about it."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


PolicyCheck = Callable[..., Sequence[Violation]]


@dataclass(frozen=True)
class OperatorPolicy:
    """Installation-wide limits that every repository's file is held to. An empty
    ``allowed_secret_prefixes`` allows any SSM or Secrets Manager ARN; ``container_ports``
    is the range the security groups open to the tasks (the check ``container-port``
    holds every rendered port to it)."""

    max_cpu: int = field(default=default_of("max_cpu"))
    max_memory: int = field(default=default_of("max_memory"))
    allowed_secret_prefixes: tuple[str, ...] = ()
    checks: tuple[PolicyCheck, ...] = ()
    container_ports: tuple[int, int] = field(default=default_of("container_ports"))

    @classmethod
    def from_settings(cls, settings: Settings) -> OperatorPolicy:
        """Build from settings; SettingsError if a check cannot be found."""
        return cls(
            max_cpu=settings.max_cpu,
            max_memory=settings.max_memory,
            allowed_secret_prefixes=settings.allowed_secret_prefixes,
            checks=tuple(resolve_check(name) for name in settings.policy_checks),
            container_ports=settings.container_ports,
        )


def resolve_check(dotted: str) -> PolicyCheck:
    """The function named ``package.module:function``; SettingsError if there is none."""
    module_name, _, attribute = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(
            f"BRANCHENV_POLICY_CHECKS: cannot import {module_name!r} ({exc.__class__.__name__}); "
            "check the name and that the module is packaged with the app"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise SettingsError(
            f"BRANCHENV_POLICY_CHECKS: {module_name!r} has no function {attribute!r}"
        )
    check: PolicyCheck = function
    return check


def check(
    task_definition: Mapping[str, Any],
    service: Mapping[str, Any],
    *,
    config: RepoConfig,
    operator: OperatorPolicy,
) -> list[Violation]:
    """Every violation of the built-in and the operator's checks; empty means deploy."""
    violations: list[Violation] = []
    for each in (*BUILT_IN_CHECKS, *operator.checks):
        violations.extend(_run(each, task_definition, service, config=config, operator=operator))
    return violations


def failure_reason(violations: Sequence[Violation]) -> str:
    """One line for the environment's ``failed`` reason (Slack, GitHub status)."""
    count = len(violations)
    head = "policy check failed" if count == 1 else f"{count} policy checks failed"
    return f"{head}: " + "; ".join(v.message for v in violations)


def _run(
    each: PolicyCheck,
    task_definition: Mapping[str, Any],
    service: Mapping[str, Any],
    *,
    config: RepoConfig,
    operator: OperatorPolicy,
) -> list[Violation]:
    """Run one check; a check that breaks fails the deploy (closed) instead of crashing."""
    name = _check_name(each)
    try:
        found = each(task_definition, service, config=config, operator=operator)
    except Exception as exc:  # an operator's check must not take converge down
        return [
            Violation(
                name,
                f"the check {name} could not run ({exc.__class__.__name__}); "
                "ask the branchenv operator to fix it",
            )
        ]
    if not isinstance(found, Sequence) or not all(isinstance(v, Violation) for v in found):
        return [
            Violation(
                name,
                f"the check {name} did not return a list of Violation; "
                "ask the branchenv operator to fix it",
            )
        ]
    return list(found)


def _check_name(each: PolicyCheck) -> str:
    module = getattr(each, "__module__", "?")
    qualname = getattr(each, "__qualname__", repr(each))
    return f"{module}:{qualname}"


def _containers(task_definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    containers = task_definition.get("containerDefinitions") or []
    yield from (c for c in containers if isinstance(c, Mapping))


def _container_label(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name', '?')}"


# ---------------------------------------------------------------------------- built-in


def image_tag(
    task_definition: Mapping[str, Any], service: Mapping[str, Any], **_: Any
) -> list[Violation]:
    """The image must be pinned: a tag other than ``latest``, or an ``@sha256:`` digest."""
    violations = []
    for container in _containers(task_definition):
        image = str(container.get("image", ""))
        tag = image_reference_tag(image)
        if tag == "@digest":
            continue
        if tag is None or tag == "latest":
            problem = "has no tag" if tag is None else "uses the tag latest"
            violations.append(
                Violation(
                    "image-tag",
                    f"{_container_label(container)} image {image} {problem}: deploy an image "
                    "tagged with the commit sha (or pinned by @sha256 digest) so every "
                    "environment runs exactly the commit it shows",
                )
            )
    return violations


def image_reference_tag(image: str) -> str | None:
    """The tag of an image reference, ``"@digest"`` when pinned by digest, else None.
    ``registry:5000/app`` has no tag: a ``:`` before the last ``/`` is a port."""
    if "@sha256:" in image:
        return "@digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    return last.rsplit(":", 1)[1] or None


def size_limits(
    task_definition: Mapping[str, Any],
    service: Mapping[str, Any],
    *,
    operator: OperatorPolicy,
    **_: Any,
) -> list[Violation]:
    """Task cpu and memory at most the operator's maximum."""
    violations = []
    limits = (("cpu", operator.max_cpu, "cpu units"), ("memory", operator.max_memory, "MiB"))
    for key, maximum, unit in limits:
        value = _size(task_definition.get(key), key)
        if value is not None and value > maximum:
            violations.append(
                Violation(
                    f"{key}-limit",
                    f"service.{key} {value} is above this installation's maximum of {maximum} "
                    f"{unit}: lower service.{key} in branchenv.yml",
                )
            )
    return violations


def _size(value: Any, key: str) -> int | None:
    """Task sizes as ECS takes them: "1024", 1024, "1 vCPU", "2 GB"."""
    if value is None:
        return None
    text = str(value).strip().lower()
    for suffix, factor in (("vcpu", 1024), ("gb", 1024)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    try:
        return int(text)
    except ValueError:
        return None


def secret_prefixes(
    task_definition: Mapping[str, Any],
    service: Mapping[str, Any],
    *,
    operator: OperatorPolicy,
    **_: Any,
) -> list[Violation]:
    """Secret ARNs only under the prefixes the operator allows (none set: any)."""
    allowed = operator.allowed_secret_prefixes
    if not allowed:
        return []
    violations = []
    for container in _containers(task_definition):
        for secret in container.get("secrets") or []:
            arn = str(secret.get("valueFrom", ""))
            if not arn.startswith(allowed):
                violations.append(
                    Violation(
                        "secret-prefix",
                        f"secret {secret.get('name')} refers to {arn}, outside the allowed "
                        f"prefixes ({', '.join(allowed)}): store it under one of them or ask "
                        "the branchenv operator to allow its prefix",
                    )
                )
    return violations


def env_secret_names(
    task_definition: Mapping[str, Any], service: Mapping[str, Any], **_: Any
) -> list[Violation]:
    """A plain variable must not look like a secret; its value is never shown."""
    violations = []
    for container in _containers(task_definition):
        for variable in container.get("environment") or []:
            name = str(variable.get("name", ""))
            if looks_like_secret(name):
                violations.append(
                    Violation(
                        "env-secret-name",
                        f"env {name} looks like a secret: move it to `secrets:` as an SSM "
                        "or Secrets Manager ARN",
                    )
                )
    return violations


def looks_like_secret(name: str) -> bool:
    """``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, ``*_KEY`` (any case)."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_LIKE_NAMES)


def container_port_range(
    task_definition: Mapping[str, Any],
    service: Mapping[str, Any],
    *,
    config: RepoConfig,
    operator: OperatorPolicy,
    **_: Any,
) -> list[Violation]:
    """Every port the load balancer sends to lies in the range the security groups open.

    The ALB reaches a target only on ports its security groups and the tasks' allow ("Security
    groups for your Application Load Balancer", docs.aws.amazon.com/elasticloadbalancing/
    latest/application/load-balancer-update-security-groups.html); terraform/network.tf opens
    BRANCHENV_CONTAINER_PORTS, so a port outside it fails every health check."""
    low, high = operator.container_ports
    ports = {
        _port(mapping.get("containerPort"))
        for container in _containers(task_definition)
        for mapping in container.get("portMappings") or []
        if isinstance(mapping, Mapping)
    }
    ports |= {
        _port(target.get("containerPort"))
        for target in service.get("loadBalancers") or []
        if isinstance(target, Mapping)
    }
    outside = sorted(p for p in ports if p is not None and not low <= p <= high)
    if config.service.container_port is None:
        what = "the installation's default container port {port} (BRANCHENV_CONTAINER_PORT)"
        fix = "ask the branchenv operator to set a default inside the range or to widen it"
    else:
        what = "service.container_port {port} in branchenv.yml"
        fix = (
            f"set container_port between {low} and {high} in branchenv.yml, or ask the "
            "branchenv operator to widen the range"
        )
    return [
        Violation(
            "container-port",
            what.format(port=port) + " is outside the ports the security groups open from the "
            f"load balancers to the tasks ({low}-{high}), so no request or health check could "
            f"reach it: {fix} (Terraform variable container_port_range)",
        )
        for port in outside
    ]


def _port(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def privileged(
    task_definition: Mapping[str, Any], service: Mapping[str, Any], **_: Any
) -> list[Violation]:
    """No privileged containers."""
    return [
        Violation(
            "privileged",
            f"{_container_label(c)} asks to run privileged: previews run unprivileged; "
            "remove privileged",
        )
        for c in _containers(task_definition)
        if c.get("privileged") is True
    ]


def host_namespaces(
    task_definition: Mapping[str, Any], service: Mapping[str, Any], **_: Any
) -> list[Violation]:
    """No host networking (nor the host's pid or ipc namespace)."""
    return [
        Violation(
            "host-network" if key == "networkMode" else f"host-{key[:3]}",
            f"{key} host shares the host's namespace with the preview: use awsvpc "
            "(Fargate's default) and remove the host mode",
        )
        for key in HOST_NAMESPACES
        if task_definition.get(key) == "host"
    ]


BUILT_IN_CHECKS: tuple[PolicyCheck, ...] = (
    image_tag,
    size_limits,
    secret_prefixes,
    env_secret_names,
    container_port_range,
    privileged,
    host_namespaces,
)
