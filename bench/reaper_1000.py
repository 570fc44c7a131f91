"""Prints the AWS calls and the time of one reaper sweep over 1,000 environments (moto).

The installation gets ten load balancers (ELB allows 100 rules on a listener by default,
so 1,000 previews need ten), then 1,000 ready environments in four repositories, each
with everything converge makes for one: its record and priority claim, task definition,
target group, listener rule, service, DNS alias with its owner TXT and ECR image tags.
Nothing is left to do, so the sweep should only look: the figures are what looking costs
(issue 13 asks for at most 60 AWS calls and one GitHub listing per repository).

    .venv/bin/python bench/reaper_1000.py [--environments N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.setdefault(key, "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import botocore.session  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib.aws.clients import ClientFactory  # noqa: E402
from chalicelib.aws.ecs import Containers  # noqa: E402
from chalicelib.aws.elbv2 import LoadBalancing  # noqa: E402
from chalicelib.aws.route53 import Dns  # noqa: E402
from chalicelib.domain.environments import Environment, Status  # noqa: E402
from chalicelib.domain.names import EnvironmentNames, names_for  # noqa: E402
from chalicelib.domain.settings import Settings  # noqa: E402
from chalicelib.handlers.deadletter import dead_letters_from_settings  # noqa: E402
from chalicelib.handlers.reaper import Reaper  # noqa: E402
from chalicelib.local.bootstrap import create_base_infrastructure  # noqa: E402
from chalicelib.runtime import Runtime  # noqa: E402
from chalicelib.tools.infra import BaseInfrastructure  # noqa: E402
from tests.conftest import settings_for  # noqa: E402
from tests.integration.images import push_test_image  # noqa: E402

RULES_PER_LISTENER = 100  # ELB's default quota ("Quotas for your Application Load Balancers")
# Listings moto answers in one page whatever their length, and the most items AWS puts in
# one page of each (ECS API reference, ListTaskDefinitionFamilies: maxResults 1-100; ECR API
# reference, ListImages: maxResults 1-1000). The pages AWS would add are counted as calls.
UNPAGED_BY_MOTO = {
    "ecs:ListTaskDefinitionFamilies": ("families", 100),
    "ecr:ListImages": ("imageIds", 1000),
}
REPOSITORIES = ("octo/shop", "octo/api", "octo/web", "octo/docs")


class Calls:
    """Every API call branchenv's clients make while ``counting``, by operation."""

    def __init__(self, session: Any) -> None:
        self.counting = False
        self.by_operation: Counter[str] = Counter()
        session.register("before-call", self._count)
        session.register("after-call", self._pages_moto_left_out)

    def _count(self, model: Any, **_: Any) -> None:
        if self.counting:
            self.by_operation[_operation(model)] += 1

    def _pages_moto_left_out(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        key, per_page = UNPAGED_BY_MOTO.get(_operation(model), ("", 0))
        if self.counting and per_page:
            items = len(parsed.get(key, []))
            self.by_operation[_operation(model)] += max(0, -(-items // per_page) - 1)


def _operation(model: Any) -> str:
    return f"{model.service_model.service_name}:{model.name}"


class FakeGitHub:
    """Every branch exists at its head; counts the listings."""

    def __init__(self, heads: dict[str, dict[str, str]]) -> None:
        self.heads = heads
        self.listings: Counter[str] = Counter()

    def list_branches(self, repository: str) -> dict[str, str]:
        self.listings[repository] += 1
        return dict(self.heads[repository])

    def file_contents(self, repository: str, path: str, ref: str) -> str | None:
        raise AssertionError("the sweep reads branchenv.yml only for records that lack it")


def build(
    infra: BaseInfrastructure, settings: Settings, clients: ClientFactory, count: int
) -> dict[str, dict[str, str]]:
    """``count`` ready environments with all their resources; GitHub's heads."""
    runtime = Runtime(settings, clients)
    ecs, elb = (
        Containers(clients.client("ecs"), infra.cluster_name),
        LoadBalancing(clients.client("elbv2")),
    )
    dns = Dns(clients.client("route53"), infra.hosted_zone_id)
    listeners = settings.listeners
    heads: dict[str, dict[str, str]] = {repo: {} for repo in REPOSITORIES}
    now = time.time()
    for n in range(count):
        repository = REPOSITORIES[n % len(REPOSITORIES)]
        branch, sha = f"feature/bench-{n}", f"{n:040x}"
        names = names_for(settings.app_name, repository, branch, settings.preview_domain)
        listener = listeners[n // RULES_PER_LISTENER]
        priority = n % RULES_PER_LISTENER + 1
        made = _resources(
            infra, ecs, elb, dns, names, listener.listener_arn, priority, sha, listener
        )
        push_test_image(clients.client("ecr"), infra.ecr_repository_name, sha)
        clients.client("ecr").put_image(
            repositoryName=infra.ecr_repository_name,
            imageManifest=_manifest_of(clients, infra, sha),
            imageTag=names.branch_tag,
        )
        runtime.store.claim_priority(listener.listener_arn, priority, names.slug)
        runtime.store.put(
            Environment(
                slug=names.slug, repository=repository, branch=branch, desired="present",
                status=Status.READY, desired_sha=sha, deployed_sha=sha, created_at=now,
                updated_at=now, triggered_at=now, ready_at=now, ttl_hours=None, kept=False,
                **made,
            )
        )  # fmt: skip
        heads[repository][branch] = sha
    return heads


def _resources(
    infra: BaseInfrastructure,
    ecs: Containers,
    elb: LoadBalancing,
    dns: Dns,
    names: EnvironmentNames,
    listener_arn: str,
    priority: int,
    sha: str,
    listener: Any,
) -> dict[str, Any]:
    tags = names.tags()
    ecs_tags = [{"key": k, "value": v} for k, v in tags.items()]
    definition = ecs.register_task_definition(
        {
            "family": names.task_family,
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "executionRoleArn": infra.execution_role_arn,
            "containerDefinitions": [
                {"name": "app", "image": f"{infra.ecr_repository_url}:{sha}", "essential": True}
            ],
            "tags": ecs_tags,
        }
    )
    group = elb.create_target_group(
        names.target_group, vpc_id=infra.vpc_id, port=8080, health_check_path="/", tags=tags
    )
    rule = elb.create_rule(
        listener_arn, priority=priority, host=names.host, target_group_arn=group.arn, tags=tags
    )
    service = ecs.create_service(
        {
            "serviceName": names.service(1),
            "taskDefinition": definition.arn,
            "desiredCount": 1,
            "launchType": "FARGATE",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(infra.private_subnet_ids),
                    "securityGroups": [infra.task_security_group_id],
                }
            },
            "tags": ecs_tags,
        }
    )
    dns.upsert_alias(names.host, listener.dns_name, listener.zone_id, names.dns_owner)
    return {
        "listener_arn": listener_arn,
        "priority": priority,
        "target_group_arn": group.arn,
        "rule_arn": rule.arn,
        "service_name": service.name,
        "task_definition_arn": definition.arn,
    }


def _manifest_of(clients: ClientFactory, infra: BaseInfrastructure, tag: str) -> str:
    image = clients.client("ecr").batch_get_image(
        repositoryName=infra.ecr_repository_name, imageIds=[{"imageTag": tag}]
    )["images"][0]
    return str(image["imageManifest"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=1000)
    count = parser.parse_args().environments
    balancers = max(1, -(-count // RULES_PER_LISTENER))
    with mock_aws():
        setup = ClientFactory("us-east-1")
        infra = create_base_infrastructure(
            setup,
            app_name="bench",
            preview_domain="preview.example.com",
            region="us-east-1",
            load_balancers=balancers,
        )
        settings = settings_for(infra)
        started = time.perf_counter()
        heads = build(infra, settings, setup, count)
        print(f"built {count} environments on {balancers} load balancers "
              f"in {time.perf_counter() - started:.0f} s")  # fmt: skip

        session = botocore.session.get_session()
        calls = Calls(session)
        clients = ClientFactory("us-east-1", session=session)
        runtime = Runtime(settings, clients)
        github = FakeGitHub(heads)
        reaper = Reaper(
            settings=settings,
            store=runtime.store,
            converger=runtime.converger,
            repo_configs=runtime.converger.repo_configs,
            inventory=runtime.inventory,
            github=github,
            dead_letters=dead_letters_from_settings(settings, clients),
            queue=runtime.queue,
        )
        calls.counting = True
        started = time.perf_counter()
        report = reaper.run()
        seconds = time.perf_counter() - started
        calls.counting = False

    total = sum(calls.by_operation.values())
    print(f"sweep over {count} environments: {total} AWS calls, {seconds:.1f} s (moto, in process)")
    for operation, n in sorted(calls.by_operation.items()):
        print(f"  {operation:<48} {n:>4}")
    listings = ", ".join(f"{repo} {n}" for repo, n in sorted(github.listings.items()))
    print(f"GitHub branch listings: {listings}")
    print(f"report: {report.counts()}")
    if report.errors:
        print("errors:", *report.errors[:5], sep="\n  ")


if __name__ == "__main__":
    main()
