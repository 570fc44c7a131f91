"""The target builder: what converge aims at for one environment, before planning.

:class:`TargetBuilder` reads the branch's ``branchenv.yml`` at the desired sha through
the :class:`~chalicelib.engine.converge.repo_configs.RepoConfigSource` it shares with the
reaper, renders the task definition and checks it against the operator's policy, and
places a new environment on the listener of the pool with the most room. Everything it
computes goes into a frozen :class:`~chalicelib.engine.converge.model.Target`, so the
planner stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote

from chalicelib.domain.environments import Environment, EnvironmentStore
from chalicelib.domain.names import EnvironmentNames, short_hash
from chalicelib.domain.settings import Listener, Settings
from chalicelib.engine.converge.model import SPEC_TAG, Target
from chalicelib.engine.converge.planner import spec_fingerprint
from chalicelib.engine.converge.repo_configs import RepoConfigSource
from chalicelib.engine.policy import OperatorPolicy, check_context, failure_reason
from chalicelib.engine.repoconfig import FILE_NAME
from chalicelib.engine.taskdef import RenderContext, render_task_definition


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

    def target(self, env: Environment, names: EnvironmentNames) -> Target:
        settings = self.settings
        listener = self.listener_for(env, names)
        repository_uri = self.repository_uri()
        mode = settings.image_source
        config, problem = self.configs.repo_config(env)
        excluded = None
        if not config.branches.wants(env.branch, default_branch=None):
            excluded = f"{FILE_NAME} excludes branch {env.branch!r} from previews"
        ctx = RenderContext(settings, names, env.desired_sha or "", "", config=config)
        image_uri = request = spec = source_tag = None
        if env.desired == "present" and env.desired_sha and problem is None:
            image_uri = f"{repository_uri}:{env.desired_sha}"
            ctx = RenderContext(settings, names, env.desired_sha, image_uri, config=config)
            if mode == "retag" and settings.retag_pattern:
                source_tag = retag_source(settings.retag_pattern, env.desired_sha, names)
            violations = check_context(ctx, operator=self.operator)
            if violations:
                problem = failure_reason(violations)
            request = render_task_definition(ctx)
            spec = spec_fingerprint(request)
            request["tags"] = [*request["tags"], {"key": SPEC_TAG, "value": spec}]
        service = ctx.service_spec
        return Target(
            names,
            listener,
            image_uri,
            request,
            spec,
            service.desired_count,
            image_source=mode,
            source_tag=source_tag,
            repository_uri=repository_uri,
            log_url=log_group_url(settings.region, names.log_group, names.slug),
            context=ctx,
            container_port=service.container_port,
            health_check_path=service.health_check_path,
            problem=problem,
            excluded=excluded,
            ttl_hours=config.ttl_hours,
            kept=config.is_kept(env.branch),
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
