"""The embedded stack behind ``branchenv local``, ``branchenv demo`` and the end-to-end tests.

One process, loopback only: a moto server standing in for AWS with the base
infrastructure created in it, the Chalice app served over HTTP by Chalice's local server,
the queue pump and scheduler playing Lambda, the event relay playing ECS and CodeBuild,
the Slack/GitHub stand-ins with the ``/_local`` controls, and the data plane: a local load
balancer on ``alb_port`` in front of preview tasks that really run (dataplane.py), whose
port every preview URL carries (settings.py). The app gets its settings
from :meth:`BaseInfrastructure.environment` plus local values, through
``app.use_runtime``: this module never sets ``os.environ``.

The app's AWS clients carry the strict-AWS layer (chalicelib/local/strict.py) and time
runs :attr:`StackOptions.time_factor` times faster than on AWS: the queue's visibility
timeout, every ChangeMessageVisibility the app makes and the strict layer's windows are
divided by it (rounded up), so nothing is retried sooner than AWS would, relatively.

:meth:`LocalStack.stop` stops every thread it started and closes every port it opened,
also when :meth:`LocalStack.start` fails half-way. Nothing here may reach a real AWS
account: every boto3 client it makes has the moto server as its endpoint.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.dynamodb import DynamoEnvironmentStore
from chalicelib.domain.settings import PREFIX, Settings
from chalicelib.local.agents import fake_session, stand_in, stand_in_clients
from chalicelib.local.alb import LocalLoadBalancer
from chalicelib.local.dataplane import DataPlane, choose_launcher, start_data_plane
from chalicelib.local.eventbridge import scheduled_event
from chalicelib.local.pump import QueuePump, Scheduler, TimeFactor, lambda_context
from chalicelib.local.relay import BuildRecorder, EventRelay
from chalicelib.local.strict import StrictAws
from chalicelib.tools.infra import BaseInfrastructure

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
DEFAULT_PORT = 8000
DEFAULT_AWS_PORT = 5000
DEFAULT_STUB_PORT = 8001
DEFAULT_ALB_PORT = 8080
DEFAULT_WEBHOOK_SECRET = "branchenv-local-secret"
DEFAULT_DOMAIN = "preview.localhost"
DEFAULT_APP_NAME = "demo"
LOCAL_SLACK_CHANNEL = "#previews"
LOCAL_GITHUB_TOKEN = "local-github-token"
LOCAL_SLACK_TOKEN = "xoxb-local-slack-token"
BUILD_ENV_VARIABLE = "BRANCHENV_ENV"  # the slug, passed by chalicelib.aws.codebuild
# Local time runs this many times faster than AWS time: the queue's 1800 s visibility
# timeout becomes 180 s, the worker's 2 s first backoff 1 s (rounded up, never shorter).
DEFAULT_TIME_FACTOR = 10


class StackError(Exception):
    """The local stack could not start; the message says what to do."""


@dataclass(frozen=True)
class StackOptions:
    """Everything ``branchenv local`` can be told; port 0 means "any free port"."""

    port: int = DEFAULT_PORT
    aws_port: int = DEFAULT_AWS_PORT
    stub_port: int = DEFAULT_STUB_PORT
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    domain: str = DEFAULT_DOMAIN
    app_name: str = DEFAULT_APP_NAME
    region: str = REGION
    build_seconds: float = 1.0
    reap_seconds: float = 60.0
    image_source: str = "build"
    time_factor: int = DEFAULT_TIME_FACTOR
    load_balancers: int = 1
    alb_port: int = DEFAULT_ALB_PORT
    image: str | None = None  # run under Docker, where an engine answers `docker info`


class LocalStack:
    """Start with :meth:`start` (or ``with``), stop with :meth:`stop`; both idempotent."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self._started = False
        self.aws_url = ""
        self.app_url = ""
        self.stub_url = ""
        self.infra: BaseInfrastructure | None = None
        self.settings: Settings | None = None
        self.clients: ClientFactory | None = None
        self.runtime: Any = None
        self.pump: QueuePump | None = None
        self.relay: EventRelay | None = None
        self.strict: StrictAws | None = None
        self.standins: Any = None
        self.alb_url = ""
        self.data_plane: DataPlane | None = None
        self.balancer: LocalLoadBalancer | None = None
        self.time = TimeFactor(self.options.time_factor)
        self.queue_visibility_seconds = 0
        self.records: DynamoEnvironmentStore | None = None  # on a stand-in's client (agents.py)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- start ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            self._start_moto()
            self._create_infrastructure()
            self._start_standins()
            self._start_data_plane()
            self._install_runtime()
            self._start_app_server()
            self._start_pump_relay_scheduler()
        except BaseException:
            self.stop()
            raise

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        _check_port_free(self.options.aws_port, "--aws-port")
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.options.aws_port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self.aws_url = f"http://{host}:{port}"

        def stop_moto() -> None:
            _reset_moto(self.aws_url)
            server.stop()

        self._stops.append(("moto server", stop_moto))
        # moto keeps its state in the process: start from an empty account, like a new one.
        _reset_moto(self.aws_url)

    def _create_infrastructure(self) -> None:
        from chalicelib.local.bootstrap import create_base_infrastructure

        self.clients = stand_in_clients(self.options.region, self.aws_url)
        self.infra = create_base_infrastructure(
            self.clients,
            app_name=self.options.app_name,
            preview_domain=self.options.domain,
            region=self.options.region,
            load_balancers=self.options.load_balancers,
        )
        self.queue_visibility_seconds = self.time.compress_queue(
            self.clients.client("sqs"), self.infra.queue_url
        )
        table = self.infra.table_name
        self.records = DynamoEnvironmentStore(self.clients.client("dynamodb"), table)

    def _start_standins(self) -> None:
        from chalicelib.local.standins import StandIns

        _check_port_free(self.options.stub_port, "--stub-port")
        server = StandIns(
            self.options.stub_port,
            reap=self.reap,
            slack_token=LOCAL_SLACK_TOKEN,
            github_token=LOCAL_GITHUB_TOKEN,
        )
        server.start()
        self._stops.append(("stand-ins", server.stop))
        self.standins = server
        self.stub_url = server.url

    def _install_runtime(self) -> None:
        from chalicelib.runtime import Runtime

        app_module = _app_module()
        assert self.infra is not None and self.clients is not None
        assert self.balancer is not None
        self.settings = Settings.from_environ(self.environment())
        session = fake_session(self.options.region)
        self.recorder = BuildRecorder()
        self.recorder.install(session.events)
        self.time.install(session.events)
        app_clients = ClientFactory(self.options.region, self.aws_url, session=session)
        # Windows in AWS seconds on the compressed clock; the layer reads through the
        # stack's own (unhooked) clients.
        reads = stand_in(self.clients, "strict")
        self.strict = StrictAws(clock=self.time.clock).install(app_clients, reads=reads)
        assert self.data_plane is not None
        self.data_plane.checker.install(app_clients)
        self.runtime = Runtime(self.settings, app_clients)
        app_module.use_runtime(self.runtime)
        self._stops.append(("app runtime", lambda: app_module.use_runtime(None)))

    def _start_data_plane(self) -> None:
        """The local load balancer, its health checks and the tasks ECS runs."""
        assert self.clients is not None and self.infra is not None
        _check_port_free(self.options.alb_port, "--alb-port")
        clients = stand_in(self.clients, "dataplane")
        parts = start_data_plane(
            clients,
            launcher=choose_launcher(self.options.image, clients),
            listener_arns=[item.listener_arn for item in self.infra.listeners()],
            port=self.options.alb_port,
            scale=lambda seconds: seconds / self.time.factor,
            port_reachable=self._port_reachable,
            repository_of=self._repository_of,
            # The waker target groups' Lambda function: app.py's waker, in-process.
            waker=lambda event: self._handler_or_missing("waker")(event, lambda_context("waker")),
        )
        self.data_plane, self.balancer = parts.data_plane, parts.balancer
        self.alb_url = parts.balancer.url
        self._stops.extend(parts.stops)

    def _port_reachable(self, group: str, port: int) -> bool:
        return self.strict.port_reachable(group, port) if self.strict is not None else True

    def _repository_of(self, environment: Mapping[str, str]) -> str:
        slug = environment.get("BRANCH_SLUG")
        record = self.records.get(slug) if slug and self.records else None
        return str(record.repository) if record is not None else ""

    def environment(self) -> dict[str, str]:
        """The app's settings: the base infrastructure's outputs plus the local stand-ins."""
        assert self.infra is not None
        env = self.infra.environment()
        local = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "WEBHOOK_SECRET": self.options.webhook_secret,
            "PREVIEW_SCHEME": "http",
            "PREVIEW_PORT": str(self.balancer.port) if self.balancer else "",
            "IMAGE_SOURCE": self.options.image_source,
            "GITHUB_API_URL": self.standins.github_api_url,
            "SLACK_API_URL": self.standins.slack_api_url,
            "GITHUB_TOKEN": LOCAL_GITHUB_TOKEN,
            "SLACK_TOKEN": LOCAL_SLACK_TOKEN,
            "SLACK_CHANNEL": LOCAL_SLACK_CHANNEL,
            "DASHBOARD_AUTH": "none",
        }
        env.update({PREFIX + key: value for key, value in local.items()})
        return env

    def _start_app_server(self) -> None:
        _check_port_free(self.options.port, "--port")
        server = _chalice_server(_app_module().app, self.options.app_name, self.options.port)
        thread = threading.Thread(target=server.serve_forever, name="chalice-local", daemon=True)
        thread.start()

        def stop_server() -> None:
            server.shutdown()
            thread.join()
            server.server_close()

        self._stops.append(("app server", stop_server))
        host, port = server.server_address[:2]
        self.app_url = f"http://{host}:{port}"

    def _start_pump_relay_scheduler(self) -> None:
        assert self.clients is not None
        assert self.infra is not None
        assert self.strict is not None
        options = self.options
        pump = QueuePump(
            stand_in(self.clients, "pump").client("sqs"),
            self.infra.queue_url,
            self._handler_or_missing("worker"),
            region=options.region,
        )
        pump.start()
        self._stops.append(("queue pump", pump.stop))
        self.pump = pump
        relay = EventRelay(
            stand_in(self.clients, "relay"),
            self.deliver,
            self.recorder,
            app_name=options.app_name,
            cluster=self.infra.cluster_name,
            ecr_repository=self.infra.ecr_repository_name,
            region=options.region,
            build_seconds=options.build_seconds,
            branch_of=self._branch_of_build,
            failing_shas=self._failing_shas,
            data_plane=self.data_plane,
        )
        relay.install(self.runtime.clients)
        relay.start()
        self._stops.append(("event relay", relay.stop))
        self.relay = relay
        rule = f"arn:aws:events:{options.region}:123456789012:rule/{options.app_name}-reaper"
        scheduler = Scheduler(
            "reaper",
            self._handler_or_missing("reaper"),
            interval=options.reap_seconds,
            rule_arn=rule,
            region=options.region,
        )
        scheduler.start()
        self._stops.append(("reaper schedule", scheduler.stop))

    def _failing_shas(self) -> frozenset[str]:
        """The commits whose ECS deployments fail (``PUT /_local/faults`` ecs.fail_shas)."""
        with self.standins.lock:
            shas: frozenset[str] = self.standins.faults.ecs_fail_shas
            return shas

    def _branch_of_build(self, variables: Mapping[str, str]) -> str | None:
        slug = variables.get(BUILD_ENV_VARIABLE)
        env = self.records.get(slug) if slug and self.records else None
        return env.branch if env is not None else None

    # --- handlers ----------------------------------------------------------------------------

    def deliver(self, handler_name: str, event: dict[str, Any]) -> bool:
        """Call app.py's handler ``handler_name`` as AWS would; False if it raised."""
        handler = getattr(_app_module(), handler_name, None)
        if handler is None:
            log.info("app.py has no %s handler yet; event dropped", handler_name)
            return True
        try:
            handler(event, lambda_context(handler_name))
        except Exception as exc:
            log.warning("%s failed (%s: %s)", handler_name, type(exc).__name__, exc)
            log.debug("handler failure", exc_info=True)
            return False
        return True

    def reap(self) -> dict[str, Any]:
        """One reaper pass now (``POST /_local/reap``): what the reaper handler returned."""
        handler = getattr(_app_module(), "reaper", None)
        if handler is None:
            return {"error": "this version of app.py has no reaper handler yet"}
        rule = f"arn:aws:events:{self.options.region}:123456789012:rule/local-reap"
        result = handler(
            scheduled_event(rule_arn=rule, region=self.options.region), lambda_context("reaper")
        )
        return result if isinstance(result, dict) else {"result": result}

    def _handler_or_missing(self, name: str) -> Callable[[dict[str, Any], Any], Any]:
        def call(event: dict[str, Any], context: Any) -> Any:
            handler = getattr(_app_module(), name, None)
            if handler is None:
                log.debug("app.py has no %s handler yet", name)
                return None
            return handler(event, context)

        return call

    # --- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything started, newest first; log (never raise) what fails to stop."""
        while self._stops:
            name, stop = self._stops.pop()
            try:
                stop()
            except Exception as exc:
                log.warning("could not stop the %s cleanly: %s", name, exc)
        self._started = False

    def time_note(self) -> str:
        """How local time relates to AWS time, for the start-up banner."""
        return self.time.describe(self.queue_visibility_seconds)

    def urls(self) -> dict[str, str]:
        """What the stack serves, for people: name → URL."""
        return {
            "webhook": f"{self.app_url}/github/webhook",
            "previews (local load balancer)": self.alb_url,
            "dashboard": f"{self.app_url}/",
            "api": f"{self.app_url}/api/environments",
            "aws (moto)": self.aws_url,
            "stand-ins and /_local controls": self.stub_url,
        }


def _chalice_server(app: Any, app_name: str, port: int) -> Any:
    """Chalice's local HTTP server for ``app`` (what ``chalice local`` runs), request lines
    logged at debug level instead of printed."""
    from chalice.config import Config
    from chalice.local import (
        ChaliceRequestHandler,
        CustomLocalChalice,
        LocalChalice,
        LocalDevServer,
    )

    class QuietHandler(ChaliceRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("app: " + format, *args)

    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does (a thread-local current_request), done
        # once per process: doing it twice on the same app is an inheritance cycle.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    config = Config.create(chalice_stage="local", app_name=app_name)
    return LocalDevServer(app, config, LOOPBACK, port, handler_cls=QuietHandler).server


def _reset_moto(aws_url: str) -> None:
    """Empty every moto backend (moto's own ``/moto-api/reset`` control)."""
    request = urllib.request.Request(f"{aws_url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _app_module() -> ModuleType:
    import app

    return app


def _check_port_free(port: int, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            raise StackError(
                f"port {port} on {LOOPBACK} is in use; choose another with {flag}"
            ) from None


def free_port() -> int:
    """A TCP port free on loopback right now (for tests that need to know it up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
