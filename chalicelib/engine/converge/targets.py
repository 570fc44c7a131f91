"""The target builder: what converge aims at for one environment, before planning.

:class:`TargetBuilder` reads the branch's ``branchenv.yml`` at the desired sha through
the :class:`~chalicelib.engine.converge.repo_configs.RepoConfigSource` it shares with the
reaper, asks the one branch rule (:mod:`chalicelib.engine.repoconfig.branches`) whether the
branch gets a preview, renders the task definition and the service and checks them against
the operator's policy: that is :meth:`TargetBuilder.rendering`, "what would be deployed",
which ``branchenv plan`` prints too. :meth:`TargetBuilder.target` adds where it goes: it
places a new environment on the listener of the pool with the most room. Everything it
computes goes into a frozen :class:`~chalicelib.engine.converge.model.Target`, so the
planner stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalicelib.domain.environments import Environment, EnvironmentStore
from chalicelib.domain.names import EnvironmentNames, short_hash
from chalicelib.domain.settings import Listener, Settings
from chalicelib.engine.converge.model import SPEC_TAG, Target
from chalicelib.engine.converge.planner import spec_fingerprint
from chalicelib.engine.converge.repo_configs import RepoConfigSource
from chalicelib.engine.policy import OperatorPolicy, Violation, check, failure_reason
from chalicelib.engine.repoconfig import BranchVerdict, RepoConfig
from chalicelib.engine.taskdef import RenderContext, render_service, render_task_definition

# The ARNs of what converge has not made yet, in a rendering made before anything exists.
NOT_YET_CREATED = "(created by converge)"


@dataclass(frozen=True)
class Rendering:
    """What would be deployed for an environment at its desired sha, and whether it may.

    ``task_definition`` is the RegisterTaskDefinition request converge sends (with its
    spec tag), ``service`` the CreateService request with :data:`NOT_YET_CREATED` for the
    ARNs converge has not made yet; both None when the environment wants no commit or its
    ``branchenv.yml`` cannot be used (``config_error``)."""

    config: RepoConfig
    context: RenderContext
    verdict: BranchVerdict
    config_error: str | None = None
    violations: tuple[Violation, ...] = ()
    task_definition: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    spec: str | None = None
    source_tag: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the environment must fail: the file's error, or the policy checks it failed."""
        if self.config_error is not None:
            return self.config_error
        return failure_reason(self.violations) if self.violations else None


class TargetBuilder:
    """Builds the :class:`Target` of an environment."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: EnvironmentStore,
        repository_uri: Callable[[], str],
        configs: RepoConfigSource,
        operator: OperatorPolicy,
    ) -> None:
        self.settings = settings
        self.store = store
        self.repository_uri = repository_uri
        self.configs = configs
        self.operator = operator

    def rendering(
        self,
        env: Environment,
        names: EnvironmentNames,
        *,
        default_branch: str | None = None,
        image_uri: str | None = None,
    ) -> Rendering:
        """What would be deployed for ``env``: its branchenv.yml at the desired sha, the
        branch rule's verdict, the rendered requests and the policy's violations.

        ``default_branch`` is the repository's, when the caller knows it (``branchenv
        plan``); converge passes none: the intake never hands it a default branch's
        webhook. ``image_uri`` replaces the ECR repository's sha tag (``plan --image``)."""
        settings = self.settings
        config, config_error = self.configs.repo_config(env)
        verdict = config.branches.verdict(env.branch, default_branch=default_branch)
        sha = env.desired_sha
        ctx = RenderContext(settings, names, sha or "", "", config=config)
        if env.desired != "present" or not sha or config_error is not None:
            return Rendering(config, ctx, verdict, config_error)
        image = image_uri or f"{self.repository_uri()}:{sha}"
        ctx = RenderContext(settings, names, sha, image, config=config)
        source_tag = None
        if settings.image_source == "retag" and settings.retag_pattern:
            source_tag = retag_source(settings.retag_pattern, sha, names)
        request = render_task_definition(ctx)
        service = service_before_creation(ctx)
        violations = check(request, service, config=config, operator=self.operator)
        spec = spec_fingerprint(request)
        request["tags"] = [*request["tags"], {"key": SPEC_TAG, "value": spec}]
        return Rendering(
            config, ctx, verdict, None, tuple(violations), request, service, spec, source_tag
        )

    def target(self, env: Environment, names: EnvironmentNames) -> Target:
        settings = self.settings
        listener = self.listener_for(env, names)
        repository_uri = self.repository_uri()
        rendering = self.rendering(env, names)
        service = rendering.context.service_spec
        return Target(
            names,
            listener,
            rendering.context.image_uri or None,
            rendering.task_definition,
            rendering.spec,
            service.desired_count,
            image_source=settings.image_source,
            source_tag=rendering.source_tag,
            repository_uri=repository_uri,
            log_url=log_group_url(settings.region, names.log_group, names.slug),
            context=rendering.context,
            container_port=service.container_port,
            health_check_path=service.health_check_path,
            problem=rendering.problem,
            excluded=None if rendering.verdict.wanted else rendering.verdict.reason,
            ttl_hours=rendering.config.ttl_hours,
            kept=rendering.config.is_kept(env.branch),
            sleep_after_minutes=rendering.config.sleep_after_minutes,
        )

    def listener_for(self, env: Environment, names: EnvironmentNames) -> Listener:
        """The environment's own listener (it stays there for life); a new environment goes
        to the listener holding fewest of branchenv's rules, counted from the store's
        claims in one read (never by listing rules), the slug's hash breaking ties."""
        pool = self.settings.listeners
        for listener in pool:
            if listener.listener_arn == env.listener_arn:
                return listener
        if len(pool) == 1 or env.desired != "present":
            return pool[0] if len(pool) == 1 else _by_hash(pool, names)
        held = self.store.occupancy([listener.listener_arn for listener in pool])
        start = int(short_hash(names.slug), 16) % len(pool)
        ordered = [pool[(start + n) % len(pool)] for n in range(len(pool))]
        return min(ordered, key=lambda listener: held.get(listener.listener_arn, 0))


def service_before_creation(ctx: RenderContext) -> dict[str, Any]:
    """The CreateService request for ``ctx`` before anything exists in AWS: the ARNs
    converge has not made yet are :data:`NOT_YET_CREATED`, which no policy check reads."""
    return render_service(
        ctx,
        service_name=ctx.names.service(1),
        task_definition_arn=NOT_YET_CREATED,
        target_group_arn=NOT_YET_CREATED,
    )


def _by_hash(pool: Sequence[Listener], names: EnvironmentNames) -> Listener:
    return pool[int(short_hash(names.slug), 16) % len(pool)]


def log_group_url(region: str, log_group: str, stream_prefix: str) -> str:
    """The CloudWatch console page of a log group, showing one environment's streams."""

    def console(text: str) -> str:  # the console's own escaping: URL-encode, then % → $
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    return (
        f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{console(log_group)}"
        f"{console('?logStreamNameFilter=' + stream_prefix)}"
    )


def retag_source(pattern: str, sha: str, names: EnvironmentNames) -> str:
    """The ECR tag a ``retag`` installation adopts for ``sha``; settings make sure the
    pattern names the sha, so it can never be ``latest``."""
    return pattern.format(sha=sha, short_sha=sha[:7], slug=names.slug)
