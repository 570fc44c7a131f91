"""terraform/ meets the real AWS provider: init, validate (no warning), plan, apply on a moto
server, one branch's whole life on what Terraform made, then destroy leaves nothing.

It is applied with ``load_balancer_count = 2`` (issue 15): the plan and moto hold two load
balancers, each with its HTTPS listener, and every Lambda function's BRANCHENV_LISTENERS
names both; the local stack, built with two as well, makes the same.

One module-scoped apply is shared by every test here (marker ``terraform``). What moto
cannot play is in :data:`UNPLAYABLE`, with why; everything else is applied.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.environments import Status
from chalicelib.local.bootstrap import create_base_infrastructure
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import REGION, SESSION, settings_for, strict
from tests.integration.harness import World, sha_of
from tests.terraform.base_inventory import base_inventory
from tests.terraform.hcl import ROOT
from tests.terraform.real_provider import (
    FAKE_CREDENTIALS,
    Module,
    MotoServer,
    finished,
    network_in,
    provider_source,
    targets,
)

pytestmark = pytest.mark.terraform

# Resources moto cannot play (moto 5.2), and why. The plan still has them; apply skips them.
UNPLAYABLE = {
    # SetQueueAttributes stores RedrivePolicy's counterpart, but GetQueueAttributes never
    # returns RedriveAllowPolicy, so the provider waits for it until its timeout.
    "aws_sqs_queue_redrive_allow_policy.work_dead_letters": "moto never reports "
    "RedriveAllowPolicy back (GetQueueAttributes), the provider waits for it forever",
    # PutRestApi with Chalice's Swagger 2.0 body: moto answers BadRequestException "Only
    # OpenAPI 3.x.x are currently supported" (moto/apigateway/models.py, put_rest_api);
    # API Gateway itself imports Swagger 2.0 (API Gateway developer guide, "Develop REST
    # APIs using OpenAPI"). Everything that needs the REST API follows it.
    "aws_api_gateway_rest_api.rest_api": "moto's PutRestApi takes OpenAPI 3 only, "
    "Chalice writes Swagger 2.0",
    "aws_api_gateway_deployment.rest_api": "needs the REST API",
    "aws_api_gateway_stage.rest_api": "needs the REST API",
    "aws_lambda_permission.rest_api_invoke": "needs the REST API's execution ARN",
}
BRANCH = "feature/terraform"
LOCAL_LEAVES_OUT = {
    "codebuild": (
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:CompleteLayerUpload",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
        "ecr:InitiateLayerUpload",
        "ecr:PutImage",
        "ecr:UploadLayerPart",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ),
}
APP = "shop"  # terraform/examples/complete/example.tfvars
# Applied with a pool of two (issue 15): the first is what load_balancer_count = 1 makes.
LOAD_BALANCERS = 2
MAX_LOAD_BALANCERS = 5  # terraform/variables.tf, load_balancer_count's validation
BALANCER_NAMES = (f"{APP}-previews", f"{APP}-previews-2")
NOT_FOUND = "No preview environment here: push a branch to create one (branchenv)."
FUNCTIONS = "module.chalice.aws_lambda_function."
DOMAIN = "preview.example.com"


@dataclasses.dataclass
class Applied:
    module: Module
    server: MotoServer
    planned: dict[str, dict[str, Any]]  # address → planned values
    applied: list[str]
    plan_text: str
    validated: subprocess.CompletedProcess[str]  # terraform validate -json

    def client(self, service: str) -> Any:
        return boto3.client(
            service, region_name=REGION, endpoint_url=self.server.url, **FAKE_CREDENTIALS
        )


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    base = tmp_path_factory.mktemp("real-provider")
    cli_config, why = provider_source(base)
    if cli_config is None:
        pytest.skip(why)
    server = MotoServer()
    try:
        # The package is generated while the server starts.
        module = Module(base / "terraform", cli_config, server.url)
        server.wait_ready()
        module.add_variables("moto.tfvars.json", network_in(server.url))
        module.add_variables("pool.tfvars.json", {"load_balancer_count": LOAD_BALANCERS})
        init = module.run("init", "-backend=false", "-input=false")
        assert init.returncode == 0, init.stderr
        plan = module.run("plan", "-input=false", "-out=moto.tfplan", var_files=True)
        assert plan.returncode == 0, plan.stderr
        planned = module.planned("moto.tfplan")
        # validate reads no state: it runs while the apply mostly waits on the provider.
        validating = module.start("validate", "-json")
        apply = module.run(
            "apply",
            "-input=false",
            "-auto-approve",
            "-parallelism=30",
            *targets(list(planned), list(UNPLAYABLE)),
            var_files=True,
        )
        assert apply.returncode == 0, apply.stderr
        # A targeted apply records only the outputs of what it targeted; a refresh-only
        # apply records the rest (those of the unplayable REST API stay unknown).
        refresh = module.run(
            "apply",
            "-input=false",
            "-auto-approve",
            "-refresh-only",
            "-parallelism=30",
            var_files=True,
        )
        assert refresh.returncode == 0, refresh.stderr
        validated = finished(validating)
        yield Applied(module, server, planned, module.state(), plan.stdout, validated)
    finally:
        server.stop()


def test_validate_finds_no_error_and_no_warning(applied: Applied) -> None:
    report = json.loads(applied.validated.stdout)
    assert report["valid"], report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]
    assert report["error_count"] == 0


def test_the_deployment_needs_the_aws_provider_only(applied: Applied) -> None:
    lock = (applied.module.directory / ".terraform.lock.hcl").read_text()
    providers = [line.split('"')[1] for line in lock.splitlines() if line.startswith("provider")]
    assert providers == ["registry.terraform.io/hashicorp/aws"]


def test_the_plan_makes_everything_and_apply_everything_moto_plays(applied: Applied) -> None:
    assert "Warning" not in applied.plan_text
    unplayed = [a for a in applied.planned if a not in applied.applied]
    assert sorted(u.split("module.chalice.")[-1] for u in unplayed) == sorted(UNPLAYABLE)
    assert len(applied.applied) == len(applied.planned) - len(UNPLAYABLE)


def test_one_branch_lives_and_dies_on_what_terraform_made(applied: Applied) -> None:
    outputs = applied.module.outputs()
    fields = {name: outputs[name] for name in BaseInfrastructure.output_names()}
    fields["private_subnet_ids"] = tuple(fields["private_subnet_ids"])
    infra = BaseInfrastructure(**fields)
    settings = settings_for(infra, aws_endpoint_url=applied.server.url)
    clients = ClientFactory(REGION, applied.server.url, session=SESSION)
    strict(clients, endpoint_url=applied.server.url)
    world = World(settings, clients)

    world.deliver(world.create(BRANCH))
    world.make_ready(BRANCH, sha_of(1))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.READY and env.deployed_sha == sha_of(1)
    assert env.listener_arn == infra.listener_arn

    world.deliver(world.delete(BRANCH))
    env = world.env(BRANCH)
    assert env is not None and env.status == Status.DELETED
    assert world.leftovers() == []


def test_the_local_stack_builds_what_terraform_builds(applied: Applied) -> None:
    terraform = base_inventory(ClientFactory(REGION, applied.server.url, session=SESSION), APP)
    with mock_aws():
        clients = ClientFactory(REGION, session=SESSION)
        create_base_infrastructure(
            clients,
            app_name=APP,
            preview_domain=DOMAIN,
            region=REGION,
            load_balancers=LOAD_BALANCERS,
        )
        local = base_inventory(clients, APP)
    # Made by Terraform only: the Lambda functions' role (the local stack runs the handlers
    # in its own process).
    assert set(terraform["role"]) - set(local["role"]) == {f"{APP}-lambda"}
    del terraform["role"][f"{APP}-lambda"]
    # IAM actions the local stack leaves out, each for a reason: nothing enforces IAM on
    # the stand-in CodeBuild (relay.py pushes the image itself).
    for role, extra in LOCAL_LEAVES_OUT.items():
        wanted = terraform["role"][f"{APP}-{role}"]["actions"]
        assert set(extra) <= set(wanted), (role, wanted)
        terraform["role"][f"{APP}-{role}"]["actions"] = sorted(set(wanted) - set(extra))
    for kind in sorted(set(local) | set(terraform)):
        assert local.get(kind) == terraform.get(kind), kind


def test_the_plan_makes_two_load_balancers_each_with_its_https_listener(
    applied: Applied,
) -> None:
    planned = applied.planned
    balancers = {a: v for a, v in planned.items() if a.startswith("aws_lb.previews[")}
    https = {a: v for a, v in planned.items() if a.startswith("aws_lb_listener.https[")}
    redirects = [a for a in planned if a.startswith("aws_lb_listener.http[")]

    assert [v["name"] for _, v in sorted(balancers.items())] == list(BALANCER_NAMES)
    assert all(v["load_balancer_type"] == "application" for v in balancers.values())
    assert sorted(https) == ["aws_lb_listener.https[0]", "aws_lb_listener.https[1]"]
    for listener in https.values():
        assert (listener["port"], listener["protocol"]) == (443, "HTTPS")
        (action,) = listener["default_action"]
        assert action["type"] == "fixed-response"
        assert action["fixed_response"][0]["status_code"] == "404"
    assert sorted(redirects) == ["aws_lb_listener.http[0]", "aws_lb_listener.http[1]"]
    # One wildcard certificate serves both listeners.
    assert [a for a in planned if a.startswith("aws_acm_certificate.")] == [
        "aws_acm_certificate.previews"
    ]


def test_each_load_balancer_has_its_https_listener_with_the_wildcard_certificate(
    applied: Applied,
) -> None:
    elbv2 = applied.client("elbv2")
    balancers = elbv2.describe_load_balancers(Names=list(BALANCER_NAMES))["LoadBalancers"]
    certificates = applied.client("acm").list_certificates()["CertificateSummaryList"]

    assert len(balancers) == LOAD_BALANCERS
    assert [c["DomainName"] for c in certificates] == [f"*.{DOMAIN}"]
    for balancer in balancers:
        listeners = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])
        https = [x for x in listeners["Listeners"] if x["Port"] == 443]
        assert len(https) == 1, balancer["LoadBalancerName"]
        assert https[0]["Protocol"] == "HTTPS"
        certificate = [c["CertificateArn"] for c in https[0]["Certificates"]]
        assert certificate == [certificates[0]["CertificateArn"]]
        (action,) = https[0]["DefaultActions"]
        assert action["FixedResponseConfig"]["StatusCode"] == "404"
        assert action["FixedResponseConfig"]["MessageBody"] == NOT_FOUND


# Lambda: "the total size of all environment variables doesn't exceed 4 KB" (Lambda quotas,
# docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); every function carries
# the whole pool in BRANCHENV_LISTENERS, so the pool's largest size must fit in each one.
LAMBDA_ENVIRONMENT_BYTES = 4096
LONGEST_APP_NAME = 23  # settings.APP_NAME_PATTERN


def test_the_largest_pool_terraform_accepts_fits_every_functions_environment(
    applied: Applied,
) -> None:
    variables_tf = (ROOT / "terraform" / "variables.tf").read_text()
    assert f"var.load_balancer_count <= {MAX_LOAD_BALANCERS} " in variables_tf
    largest = MAX_LOAD_BALANCERS
    awslambda = applied.client("lambda")
    for address in (a for a in applied.planned if a.startswith(FUNCTIONS)):
        name = applied.planned[address]["function_name"]
        variables = awslambda.get_function_configuration(FunctionName=name)["Environment"][
            "Variables"
        ]
        size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
        entries = json.loads(variables["BRANCHENV_LISTENERS"])
        entry = max(len(json.dumps(e, separators=(",", ":")).encode()) + 1 for e in entries)
        app = APP
        # Each name made from the app name grows with it: the app name itself, and it
        # appears in every ARN of the pool's entries and in the other settings.
        growth = (LONGEST_APP_NAME - len(app)) * sum(
            value.count(app) + key.count(app) for key, value in variables.items()
        )
        projected = size + (largest - len(entries)) * (entry + LONGEST_APP_NAME) + growth
        assert projected <= LAMBDA_ENVIRONMENT_BYTES, (address, projected)


def test_every_lambda_function_has_both_listeners_in_branchenv_listeners(
    applied: Applied,
) -> None:
    elbv2 = applied.client("elbv2")
    expected = []
    for name in BALANCER_NAMES:
        balancer = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]
        listeners = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])
        (https,) = [x for x in listeners["Listeners"] if x["Port"] == 443]
        waker = elbv2.describe_target_groups(Names=[name.replace("-previews", "-waker")])
        expected.append(
            {
                "listener_arn": https["ListenerArn"],
                "dns_name": balancer["DNSName"],
                "zone_id": balancer["CanonicalHostedZoneId"],
                "waker_target_group_arn": waker["TargetGroups"][0]["TargetGroupArn"],
            }
        )
    functions = [a for a in applied.planned if a.startswith(FUNCTIONS)]
    awslambda = applied.client("lambda")

    assert len(functions) >= 3  # the intake's API handler, the worker, the reaper, ...
    for address in functions:
        name = applied.planned[address]["function_name"]
        configuration = awslambda.get_function_configuration(FunctionName=name)
        listed = json.loads(configuration["Environment"]["Variables"]["BRANCHENV_LISTENERS"])
        assert listed == expected, address
    assert applied.module.outputs()["listeners"] == expected


def test_destroy_leaves_no_resource(applied: Applied) -> None:
    # -refresh=false: the fixture's refresh-only apply has just read every resource, and a
    # destroy deletes by the IDs in state; its own refresh would read them all again (about
    # half of the destroy's CPU). What is left afterwards is asserted from moto, not state.
    destroyed = applied.module.run(
        "destroy",
        "-input=false",
        "-auto-approve",
        "-refresh=false",
        "-parallelism=30",
        var_files=True,
    )
    assert destroyed.returncode == 0, destroyed.stderr
    assert applied.module.state() == []
    tagging = boto3.client(
        "resourcegroupstaggingapi", region_name=REGION, endpoint_url=applied.server.url
    )
    tagged = tagging.get_resources(TagFilters=[{"Key": "branchenv:app", "Values": [APP]}])
    arns = [r["ResourceARN"] for r in tagged["ResourceTagMappingList"]]
    assert [arn for arn in arns if not _gone(applied.server.url, arn)] == []


def _gone(endpoint: str, arn: str) -> bool:
    """Deleted as AWS deletes it, though still described: a secret scheduled for deletion
    (kept for its recovery window, Secrets Manager API reference, "DeleteSecret"), an
    INACTIVE cluster or service (ECS API reference, "DeleteCluster", "DeleteService"), an
    INACTIVE task definition revision ("DeregisterTaskDefinition")."""
    service = arn.split(":")[2]
    client = boto3.client(service, region_name=REGION, endpoint_url=endpoint, **FAKE_CREDENTIALS)
    if service == "secretsmanager":
        return "DeletedDate" in client.describe_secret(SecretId=arn)
    if service == "ecs" and ":cluster/" in arn:
        clusters = client.describe_clusters(clusters=[arn])["clusters"]
        return all(c["status"] == "INACTIVE" for c in clusters)
    if service == "ecs" and ":service/" in arn:
        cluster = arn.split("/")[-2]
        services = client.describe_services(cluster=cluster, services=[arn])["services"]
        return all(s["status"] in ("INACTIVE", "DRAINING") for s in services)
    if service == "ecs" and ":task-definition/" in arn:
        described = client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return described["status"] in ("INACTIVE", "DELETE_IN_PROGRESS")
    return False
