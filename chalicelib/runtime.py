"""The dependencies of the handlers, built lazily: clients, gateways, store, services.

``app.py`` holds one Runtime per process. Nothing is created until a handler asks for it,
so the webhook path creates only the SQS client, and heavy libraries (PyGithub, slack-sdk)
are imported only by the worker when it first notifies. Tests build a Runtime around their
own Settings and ClientFactory (moto) instead of patching anything.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.aws.sqs import WorkQueue
from chalicelib.domain.environments import EnvironmentStore
from chalicelib.domain.settings import Settings
from chalicelib.handlers.intake import IntakeConfig

if TYPE_CHECKING:
    from chalicelib.aws.inventory import Inventory
    from chalicelib.aws.secrets import Secrets
    from chalicelib.domain.desired import BranchTruth
    from chalicelib.engine.converge import Converger
    from chalicelib.github.gateway import GitHubGateway
    from chalicelib.handlers.reaper import Reaper
    from chalicelib.handlers.waker import WakerDeps
    from chalicelib.notify import Notifier


class Runtime:
    """Lazily built dependencies for one installation."""

    def __init__(
        self,
        settings: Settings,
        clients: ClientFactory | None = None,
        *,
        store: EnvironmentStore | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients or ClientFactory(settings.region, settings.aws_endpoint_url)
        self._store = store

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Runtime:
        return cls(Settings.from_environ(environ))

    def intake_config(self) -> IntakeConfig:
        s = self.settings
        return IntakeConfig(
            app_name=s.app_name,
            preview_domain=s.preview_domain,
            preview_scheme=s.preview_scheme,
            allowed_repositories=s.allowed_repositories,
            max_body_bytes=s.max_body_bytes,
            secrets=self.webhook_secrets,
            preview_url=s.preview_url,
        )

    @functools.cached_property
    def queue(self) -> WorkQueue:
        return WorkQueue(self.clients.client("sqs"), self.settings.queue_url)

    @property
    def store(self) -> EnvironmentStore:
        if self._store is None:
            self._store = DynamoEnvironmentStore(
                self.clients.client("dynamodb"), self.settings.table_name
            )
        return self._store

    def waker_deps(self) -> WakerDeps:
        """What a sleeping preview's URL needs (chalicelib.handlers.waker): the records and
        the queue, nothing else."""
        from chalicelib.handlers.waker import WakerDeps

        s = self.settings
        return WakerDeps(self.store, self.queue, s.app_name, s.preview_domain)

    @functools.cached_property
    def secrets(self) -> Secrets:
        """Every secret setting (chalicelib.aws.secrets), each read once while warm: the
        webhook secret, the dashboard keys, and the Slack and GitHub credentials."""
        from chalicelib.aws.secrets import Secrets

        return Secrets.over(self.settings, self.clients)

    def webhook_secrets(self) -> tuple[str, ...]:
        """The accepted webhook secrets, the current one first (SettingsError if neither
        BRANCHENV_WEBHOOK_SECRET nor ..._ARN is set)."""
        return self.secrets.webhook.required()

    @functools.cached_property
    def notifier(self) -> Notifier:
        """Slack, GitHub and EventBridge notifications, each where it is configured."""
        from chalicelib.notify.dispatcher import notifier_from_settings

        return notifier_from_settings(
            self.settings, self.clients, github=self.github, secrets=self.secrets
        )

    @functools.cached_property
    def github(self) -> GitHubGateway | None:
        """GitHub's REST API, where a token or a GitHub App is configured: built once and
        shared by the notifier, converge and the reaper, so a warm process keeps one
        GitHub App installation token."""
        from chalicelib.github.connect import gateway_from_settings

        return gateway_from_settings(self.settings, self.clients, secrets=self.secrets)

    @property
    def branch_truth(self) -> BranchTruth | None:
        """GitHub's word on whether a branch exists and where its head is."""
        return self.github

    @functools.cached_property
    def inventory(self) -> Inventory:
        """Everything tagged as this installation's: the leak audit, and the reaper's list."""
        from chalicelib.aws.inventory import Inventory
        from chalicelib.aws.tagging import TaggedResources

        c, s = self.converger, self.settings
        return Inventory(
            app=s.app_name,
            domain=s.preview_domain,
            tagged=TaggedResources(self.clients.client("resourcegroupstaggingapi")),
            dns=c.dns,
            load_balancing=c.load_balancing,
            containers=c.containers,
            images=c.images,
            store=self.store,
            listener_arns=[listener.listener_arn for listener in s.listeners],
        )

    @functools.cached_property
    def reaper(self) -> Reaper:
        from chalicelib.aws.cloudwatch import Metrics
        from chalicelib.handlers.deadletter import dead_letters_from_settings
        from chalicelib.handlers.reaper import Reaper

        return Reaper(
            settings=self.settings,
            store=self.store,
            converger=self.converger,
            repo_configs=self.converger.repo_configs,
            inventory=self.inventory,
            github=self.github,
            dead_letters=dead_letters_from_settings(self.settings, self.clients),
            queue=self.queue,
            metrics=Metrics(self.clients.client("cloudwatch")),
        )

    @functools.cached_property
    def converger(self) -> Converger:
        """Converge, wired to this runtime's clients (the runtime wires it; converge never
        imports the runtime)."""
        from chalicelib.aws.codebuild import Builds
        from chalicelib.aws.ecr import Images
        from chalicelib.aws.ecs import Containers
        from chalicelib.aws.elbv2 import LoadBalancing
        from chalicelib.aws.route53 import Dns
        from chalicelib.engine.converge import Converger

        s, c = self.settings, self.clients
        builds = Builds(c.client("codebuild"), s.codebuild_project) if s.codebuild_project else None
        return Converger(
            settings=s,
            store=self.store,
            dns=Dns(c.client("route53"), s.hosted_zone_id),
            load_balancing=LoadBalancing(c.client("elbv2")),
            containers=Containers(c.client("ecs"), s.cluster),
            images=Images(c.client("ecr"), s.ecr_repository),
            builds=builds,
            notifier=self.notifier,
            config_source=self.github,
        )
