"""The local bootstrap creates in moto what terraform/ creates in an AWS account."""

from __future__ import annotations

import json
import socket

from moto.server import ThreadedMotoServer

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.settings import Settings
from chalicelib.local.bootstrap import (
    MAX_RECEIVE_COUNT,
    NOT_FOUND_BODY,
    create_base_infrastructure,
)
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, DOMAIN, REGION, WEBHOOK_SECRET


def test_settings_read_the_bootstrapped_environment(infra: BaseInfrastructure) -> None:
    environ = {**infra.environment(), "BRANCHENV_WEBHOOK_SECRET": WEBHOOK_SECRET}

    settings = Settings.from_environ(environ)

    assert settings.app_name == APP
    assert settings.preview_domain == DOMAIN
    assert settings.listeners[0].listener_arn == infra.listener_arn
    assert settings.subnets == infra.private_subnet_ids


def test_vpc_has_two_public_and_two_private_subnets_in_two_zones(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    ec2 = clients.client("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[infra.vpc_id])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [infra.vpc_id]}])

    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert len(subnets["Subnets"]) == 4
    private = [s for s in subnets["Subnets"] if s["SubnetId"] in infra.private_subnet_ids]
    assert len({s["AvailabilityZone"] for s in private}) == 2


def test_tasks_accept_traffic_only_from_the_load_balancer(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    ec2 = clients.client("ec2")
    task_sg = ec2.describe_security_groups(GroupIds=[infra.task_security_group_id])
    rules = task_sg["SecurityGroups"][0]["IpPermissions"]
    balancer = clients.client("elbv2").describe_load_balancers()["LoadBalancers"][0]

    assert [r.get("IpRanges") for r in rules] == [[]]
    assert [p["GroupId"] for p in rules[0]["UserIdGroupPairs"]] == balancer["SecurityGroups"]


def test_load_balancer_reaches_the_tasks_on_the_container_port_range_only(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    ec2 = clients.client("ec2")
    [tasks] = ec2.describe_security_groups(GroupIds=[infra.task_security_group_id])[
        "SecurityGroups"
    ]
    balancer = clients.client("elbv2").describe_load_balancers()["LoadBalancers"][0]
    [alb] = ec2.describe_security_groups(GroupIds=balancer["SecurityGroups"])["SecurityGroups"]

    def opened(rules: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(r["IpProtocol"], r.get("FromPort"), r.get("ToPort")) for r in rules]

    assert infra.container_ports == (80, 65535)
    assert opened(tasks["IpPermissions"]) == [("tcp", 80, 65535)]
    assert opened(alb["IpPermissionsEgress"]) == [("tcp", 80, 65535)]  # not AWS's allow-all
    assert [p["GroupId"] for p in alb["IpPermissionsEgress"][0]["UserIdGroupPairs"]] == [
        infra.task_security_group_id
    ]
    assert sorted(opened(alb["IpPermissions"])) == [("tcp", 80, 80), ("tcp", 443, 443)]


def test_environment_carries_the_container_port_range(infra: BaseInfrastructure) -> None:
    environ = {**infra.environment(), "BRANCHENV_WEBHOOK_SECRET": WEBHOOK_SECRET}

    assert environ["BRANCHENV_CONTAINER_PORTS"] == "80-65535"
    assert Settings.from_environ(environ).container_ports == (80, 65535)


def test_n_load_balancers_each_with_a_listener_in_the_pool(clients: ClientFactory) -> None:
    infra = create_base_infrastructure(
        clients, app_name=APP, preview_domain=DOMAIN, region=REGION, load_balancers=3
    )
    elbv2 = clients.client("elbv2")
    balancers = elbv2.describe_load_balancers()["LoadBalancers"]
    environ = {**infra.environment(), "BRANCHENV_WEBHOOK_SECRET": WEBHOOK_SECRET}

    pool = Settings.from_environ(environ).listeners
    assert [b["LoadBalancerName"] for b in balancers] == [
        f"{APP}-previews",
        f"{APP}-previews-2",
        f"{APP}-previews-3",
    ]
    assert len({item.listener_arn for item in pool}) == 3
    assert {item.dns_name for item in pool} == {b["DNSName"] for b in balancers}
    for balancer in balancers:
        [listener] = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]
        [action] = listener["DefaultActions"]
        assert listener["ListenerArn"] in {item.listener_arn for item in pool}
        assert (listener["Port"], action["Type"]) == (80, "fixed-response")
        assert action["FixedResponseConfig"]["StatusCode"] == "404"
        assert action["FixedResponseConfig"]["MessageBody"] == NOT_FOUND_BODY


def test_each_load_balancer_has_its_own_waker_target_group_in_the_listeners(
    clients: ClientFactory,
) -> None:
    infra = create_base_infrastructure(
        clients, app_name=APP, preview_domain=DOMAIN, region=REGION, load_balancers=2
    )
    elbv2 = clients.client("elbv2")
    environ = {**infra.environment(), "BRANCHENV_WEBHOOK_SECRET": WEBHOOK_SECRET}

    written = json.loads(environ["BRANCHENV_LISTENERS"])
    pool = Settings.from_environ(environ).listeners
    wakers = [item.waker_target_group_arn for item in pool]
    assert [item["waker_target_group_arn"] for item in written] == wakers
    assert wakers[0] == infra.waker_target_group_arn and len(set(wakers)) == 2
    groups = elbv2.describe_target_groups(TargetGroupArns=[w for w in wakers if w])
    assert [g["TargetGroupName"] for g in groups["TargetGroups"]] == [
        f"{APP}-waker",
        f"{APP}-waker-2",
    ]
    assert {g["TargetType"] for g in groups["TargetGroups"]} == {"lambda"}
    for waker in wakers:  # base infrastructure: never taken for an environment's
        [tags] = elbv2.describe_tags(ResourceArns=[waker])["TagDescriptions"]
        assert {t["Key"]: t["Value"] for t in tags["Tags"]}["branchenv:base"] == "true"
        # Nothing registered: no Lambda function runs locally (chalicelib/local/bootstrap.py)
        assert elbv2.describe_target_health(TargetGroupArn=waker)["TargetHealthDescriptions"] == []


def test_base_infrastructure_outputs_leave_out_the_local_only_fields() -> None:
    outputs = BaseInfrastructure.output_names()

    assert "listener_arn" in outputs
    assert "more_listeners" not in outputs
    assert "container_ports" not in outputs
    assert "waker_target_group_arn" not in outputs  # terraform writes it in the listeners


def test_load_balancer_is_internet_facing_in_the_public_subnets(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    balancer = clients.client("elbv2").describe_load_balancers()["LoadBalancers"][0]

    zones = {z["SubnetId"] for z in balancer["AvailabilityZones"]}
    assert balancer["Scheme"] == "internet-facing"
    assert balancer["DNSName"] == infra.alb_dns_name
    assert zones.isdisjoint(infra.private_subnet_ids)
    assert len(zones) == 2


def test_listener_answers_unknown_hosts_with_a_helpful_404(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    listener = clients.client("elbv2").describe_listeners(ListenerArns=[infra.listener_arn])
    action = listener["Listeners"][0]["DefaultActions"][0]

    assert listener["Listeners"][0]["Port"] == 80
    assert action["Type"] == "fixed-response"
    assert action["FixedResponseConfig"]["StatusCode"] == "404"
    assert action["FixedResponseConfig"]["MessageBody"] == NOT_FOUND_BODY


def test_cluster_offers_fargate_and_fargate_spot(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    cluster = clients.client("ecs").describe_clusters(clusters=[infra.cluster_name])

    assert cluster["clusters"][0]["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]


def test_hosted_zone_serves_the_preview_domain(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    zone = clients.client("route53").get_hosted_zone(Id=infra.hosted_zone_id)

    assert zone["HostedZone"]["Name"] == DOMAIN + "."


def test_repository_scans_on_push(infra: BaseInfrastructure, clients: ClientFactory) -> None:
    answer = clients.client("ecr").describe_repositories(
        repositoryNames=[infra.ecr_repository_name]
    )
    repository = answer["repositories"][0]

    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["repositoryUri"] == infra.ecr_repository_url


def test_work_queue_is_fifo_and_redrives_to_the_dead_letter_queue(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    sqs = clients.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=infra.queue_url, AttributeNames=["All"])
    dlq = sqs.get_queue_attributes(
        QueueUrl=infra.dead_letter_queue_url, AttributeNames=["QueueArn", "FifoQueue"]
    )["Attributes"]

    queue = attributes["Attributes"]
    assert MAX_RECEIVE_COUNT == 20
    assert queue["FifoQueue"] == "true"
    assert queue["VisibilityTimeout"] == "1800"
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }
    assert dlq["FifoQueue"] == "true"


def test_table_has_a_string_key_and_ttl_on_expires_at(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    dynamodb = clients.client("dynamodb")
    table = dynamodb.describe_table(TableName=infra.table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=infra.table_name)

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }


def test_roles_are_assumable_by_ecs_tasks(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    iam = clients.client("iam")
    for arn in (infra.execution_role_arn, infra.task_role_arn):
        role = iam.get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]
        trust = role["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def test_build_project_and_event_bus_exist(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    projects = clients.client("codebuild").batch_get_projects(names=[infra.codebuild_project_name])
    bus = clients.client("events").describe_event_bus(Name=infra.event_bus_name)

    assert [p["name"] for p in projects["projects"]] == [infra.codebuild_project_name]
    assert bus["Name"] == infra.event_bus_name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_bootstrap_works_against_a_moto_server_over_http() -> None:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        clients = ClientFactory(REGION, endpoint_url=f"http://127.0.0.1:{port}")
        infra = create_base_infrastructure(
            clients, app_name=APP, preview_domain=DOMAIN, region=REGION
        )
        queues = clients.client("sqs").list_queues()["QueueUrls"]
    finally:
        server.stop()

    assert infra.queue_url in queues
    assert infra.listener_arn.startswith("arn:aws:elasticloadbalancing:")
