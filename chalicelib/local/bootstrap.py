"""Creates the base infrastructure (what terraform/ creates) through boto3, for moto.

The local stack and the test fixtures call :func:`create_base_infrastructure` against a
moto backend (in-process or a ThreadedMotoServer) and get the same
:class:`~chalicelib.tools.infra.BaseInfrastructure` that terraform's outputs describe. This is
the one module outside chalicelib/aws/ that calls boto3, because it stands in for
terraform. It must never be pointed at a real AWS account: it does not check for existing
resources, and terraform/ is how a real account gets its base infrastructure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.aws.clients import ClientFactory
from chalicelib.domain.names import BaseNames
from chalicelib.domain.settings import DEFAULT_CONTAINER_PORTS, Listener
from chalicelib.handlers.worker import DEFAULT_MAX_RECEIVE_COUNT
from chalicelib.tools.infra import BaseInfrastructure

VPC_CIDR = "10.0.0.0/16"
PUBLIC_CIDRS = ("10.0.0.0/24", "10.0.1.0/24")
PRIVATE_CIDRS = ("10.0.10.0/24", "10.0.11.0/24")
# The listener's answer for a host with no rule; the same text as terraform/alb.tf.
NOT_FOUND_BODY = "No preview environment here: push a branch to create one (branchenv)."
WORKER_TIMEOUT_SECONDS = 300
# Receives before SQS moves a message to the dead-letter queue: the worker's number, which
# terraform/queue.tf uses too. A wait makes its message visible again after a short backoff,
# and each receive counts, so this leaves room for the longest legitimate chain of waits.
MAX_RECEIVE_COUNT = DEFAULT_MAX_RECEIVE_COUNT
# An Application Load Balancer's name: at most 32 characters (ELB API reference,
# CreateLoadBalancer "Name").
MAX_LOAD_BALANCER_NAME = 32
BASE_TAGS = {"branchenv:base": "true"}
EXECUTION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
}


@dataclass(frozen=True)
class _Network:
    vpc_id: str
    public_subnet_ids: tuple[str, ...]
    private_subnet_ids: tuple[str, ...]
    alb_security_group_id: str
    task_security_group_id: str


@dataclass(frozen=True)
class _Queues:
    queue_url: str
    dead_letter_queue_url: str


@dataclass(frozen=True)
class _Roles:
    execution_role_arn: str
    task_role_arn: str
    codebuild_role_arn: str


def create_base_infrastructure(
    clients: ClientFactory,
    *,
    app_name: str,
    preview_domain: str,
    region: str,
    load_balancers: int = 1,
    container_ports: tuple[int, int] = DEFAULT_CONTAINER_PORTS,
) -> BaseInfrastructure:
    """Create every shared resource for installation ``app_name`` and describe them.

    ``load_balancers`` ALBs are made, each with its HTTP listener and 404 default action
    and its waker target group; every listener is one entry of the pool the worker spreads
    environments over.
    ``container_ports`` (from, to) is what the security groups open from the load
    balancers to the tasks, like Terraform's ``container_port_range``.
    """
    if load_balancers < 1:
        raise ValueError(f"load_balancers must be at least 1, not {load_balancers}")
    names = BaseNames(app_name)
    tags = {**BASE_TAGS, "branchenv:app": app_name}
    network = _create_network(clients.client("ec2"), app_name, region, container_ports)
    cluster = _create_cluster(clients.client("ecs"), names.cluster, tags)
    balancer, *more = (
        _create_load_balancer(clients.client("elbv2"), names, number, network, tags)
        for number in range(1, load_balancers + 1)
    )
    hosted_zone_id = _create_hosted_zone(clients.client("route53"), preview_domain)
    repository_url = _create_repository(clients.client("ecr"), names.ecr_repository, tags)
    queues = _create_queues(clients.client("sqs"), names, tags)
    table = _create_table(clients.client("dynamodb"), names.table, tags)
    roles = _create_roles(clients.client("iam"), names, tags)
    _create_build_project(clients.client("codebuild"), names, roles.codebuild_role_arn, tags)
    _create_event_bus(clients.client("events"), names.event_bus, tags)
    return BaseInfrastructure(
        app_name=app_name,
        region=region,
        vpc_id=network.vpc_id,
        private_subnet_ids=network.private_subnet_ids,
        task_security_group_id=network.task_security_group_id,
        cluster_name=cluster,
        listener_arn=balancer.listener_arn,
        alb_dns_name=balancer.dns_name,
        alb_zone_id=balancer.zone_id,
        hosted_zone_id=hosted_zone_id,
        preview_domain=preview_domain,
        ecr_repository_name=names.ecr_repository,
        ecr_repository_url=repository_url,
        queue_url=queues.queue_url,
        dead_letter_queue_url=queues.dead_letter_queue_url,
        table_name=table,
        codebuild_project_name=names.codebuild_project,
        execution_role_arn=roles.execution_role_arn,
        task_role_arn=roles.task_role_arn,
        event_bus_name=names.event_bus,
        more_listeners=tuple(more),
        container_ports=container_ports,
        waker_target_group_arn=balancer.waker_target_group_arn,
    )


def _load_balancer_name(names: BaseNames, number: int, kind: str = "previews") -> str:
    """The first is Terraform's name; the others get their number after it. ``kind``
    "waker": the name of that load balancer's waker target group (shorter: it fits too)."""
    base = names.load_balancer if kind == "previews" else f"{names.app}-{kind}"
    name = base if number == 1 else f"{base}-{number}"
    if len(name) > MAX_LOAD_BALANCER_NAME:
        raise ValueError(
            f"load balancer name {name!r} is longer than {MAX_LOAD_BALANCER_NAME} characters: "
            "choose a shorter app name"
        )
    return name


# --- network: VPC, two public and two private subnets, security groups ---------------


def _create_network(ec2: Any, app: str, region: str, ports: tuple[int, int]) -> _Network:
    vpc_id = ec2.create_vpc(
        CidrBlock=VPC_CIDR, TagSpecifications=[_ec2_tags("vpc", f"{app}-previews", app)]
    )["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    zones = (f"{region}a", f"{region}b")
    public = tuple(
        _create_subnet(ec2, vpc_id, cidr, zone, f"{app}-public-{zone}", app)
        for cidr, zone in zip(PUBLIC_CIDRS, zones, strict=True)
    )
    private = tuple(
        _create_subnet(ec2, vpc_id, cidr, zone, f"{app}-private-{zone}", app)
        for cidr, zone in zip(PRIVATE_CIDRS, zones, strict=True)
    )
    _route_public_subnets(ec2, vpc_id, public, app)
    alb_sg, task_sg = _create_security_groups(ec2, vpc_id, app, ports)
    return _Network(vpc_id, public, private, alb_sg, task_sg)


def _create_subnet(ec2: Any, vpc_id: str, cidr: str, zone: str, name: str, app: str) -> str:
    subnet_id: str = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock=cidr,
        AvailabilityZone=zone,
        TagSpecifications=[_ec2_tags("subnet", name, app)],
    )["Subnet"]["SubnetId"]
    return subnet_id


def _route_public_subnets(ec2: Any, vpc_id: str, subnets: tuple[str, ...], app: str) -> None:
    gateway_id = ec2.create_internet_gateway(
        TagSpecifications=[_ec2_tags("internet-gateway", f"{app}-previews", app)]
    )["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id)
    table_id = ec2.create_route_table(
        VpcId=vpc_id, TagSpecifications=[_ec2_tags("route-table", f"{app}-public", app)]
    )["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway_id)
    for subnet_id in subnets:
        ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)


def _create_security_groups(
    ec2: Any, vpc_id: str, app: str, ports: tuple[int, int]
) -> tuple[str, str]:
    """What terraform/network.tf makes: the internet reaches the load balancer on 80 and
    443; the load balancer reaches the tasks on ``ports`` (from, to), and nothing else.

    AWS gives a new VPC security group an allow-all egress rule, which Terraform's
    aws_security_group removes (Terraform AWS provider, aws_security_group: "Terraform will
    remove this default rule"); terraform/network.tf then allows the ALB out only to the
    tasks on the range, and the tasks out anywhere. A rule covers FromPort to ToPort, both
    included (VPC user guide, "Security group rules").
    """
    alb_sg = ec2.create_security_group(
        GroupName=f"{app}-alb",
        Description="branchenv preview load balancer: HTTP and HTTPS from anywhere",
        VpcId=vpc_id,
        TagSpecifications=[_ec2_tags("security-group", f"{app}-alb", app)],
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=alb_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": _anywhere()}
            for port in (80, 443)
        ],
    )
    task_sg = ec2.create_security_group(
        GroupName=f"{app}-tasks",
        Description="branchenv preview tasks: only from the load balancer",
        VpcId=vpc_id,
        TagSpecifications=[_ec2_tags("security-group", f"{app}-tasks", app)],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=task_sg, IpPermissions=[_tcp_with(alb_sg, ports)])
    ec2.revoke_security_group_egress(GroupId=alb_sg, IpPermissions=[_all_traffic_out()])
    ec2.authorize_security_group_egress(GroupId=alb_sg, IpPermissions=[_tcp_with(task_sg, ports)])
    return alb_sg, task_sg


def _tcp_with(group: str, ports: tuple[int, int]) -> dict[str, Any]:
    """A security group rule: TCP on ``ports`` (both ends included) to or from ``group``."""
    low, high = ports
    return {
        "IpProtocol": "tcp",
        "FromPort": low,
        "ToPort": high,
        "UserIdGroupPairs": [{"GroupId": group}],
    }


def _all_traffic_out() -> dict[str, Any]:
    """The egress rule AWS gives every new VPC security group."""
    return {"IpProtocol": "-1", "IpRanges": _anywhere()}


def _anywhere() -> list[dict[str, str]]:
    return [{"CidrIp": "0.0.0.0/0"}]


def _ec2_tags(resource_type: str, name: str, app: str) -> dict[str, Any]:
    tags = {**BASE_TAGS, "branchenv:app": app, "Name": name}
    return {"ResourceType": resource_type, "Tags": _key_value(tags)}


# --- ECS cluster ----------------------------------------------------------------------


def _create_cluster(ecs: Any, name: str, tags: dict[str, str]) -> str:
    ecs.create_cluster(
        clusterName=name,
        tags=_lower_key_value(tags),
        settings=[{"name": "containerInsights", "value": "disabled"}],
    )
    ecs.put_cluster_capacity_providers(
        cluster=name,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )
    return name


# --- load balancer, listener with a helpful 404, waker target group ---------------------


def _create_load_balancer(
    elbv2: Any, names: BaseNames, number: int, network: _Network, tags: dict[str, str]
) -> Listener:
    """The load balancer ``number``, its listener and its waker, as one entry of the pool."""
    balancer = elbv2.create_load_balancer(
        Name=_load_balancer_name(names, number),
        Subnets=list(network.public_subnet_ids),
        SecurityGroups=[network.alb_security_group_id],
        Scheme="internet-facing",
        Type="application",
        IpAddressType="ipv4",
        Tags=_key_value(tags),
    )["LoadBalancers"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {
                    "StatusCode": "404",
                    "ContentType": "text/plain",
                    "MessageBody": NOT_FOUND_BODY,
                },
            }
        ],
        Tags=_key_value(tags),
    )["Listeners"][0]
    # The waker: a Lambda target group, one per load balancer as in terraform/. Nothing is
    # registered (moto takes any function ARN unchecked; no Lambda runs locally): the local
    # load balancer calls app.py's waker for a group whose TargetType is lambda (alb.py).
    waker = elbv2.create_target_group(
        Name=_load_balancer_name(names, number, "waker"), TargetType="lambda", Tags=_key_value(tags)
    )["TargetGroups"][0]
    return Listener(
        listener["ListenerArn"],
        balancer["DNSName"],
        balancer["CanonicalHostedZoneId"],
        waker["TargetGroupArn"],
    )


# --- DNS and images ---------------------------------------------------------------------


def _create_hosted_zone(route53: Any, domain: str) -> str:
    zone = route53.create_hosted_zone(
        Name=domain,
        CallerReference=f"branchenv-{domain}",
        HostedZoneConfig={"Comment": "branchenv preview environments", "PrivateZone": False},
    )["HostedZone"]
    zone_id: str = zone["Id"].rsplit("/", 1)[-1]
    return zone_id


def _create_repository(ecr: Any, name: str, tags: dict[str, str]) -> str:
    repository = ecr.create_repository(
        repositoryName=name,
        imageScanningConfiguration={"scanOnPush": True},
        imageTagMutability="MUTABLE",
        tags=_key_value(tags),
    )["repository"]
    return str(repository["repositoryUri"])


# --- work queue, environment table ---------------------------------------------------------


def _create_queues(sqs: Any, names: BaseNames, tags: dict[str, str]) -> _Queues:
    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(14 * 24 * 3600)},
        tags=tags,
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": str(6 * WORKER_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
        tags=tags,
    )["QueueUrl"]
    return _Queues(queue_url=queue_url, dead_letter_queue_url=dlq_url)


def _create_table(dynamodb: Any, name: str, tags: dict[str, str]) -> str:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=_key_value(tags),
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return name


# --- IAM roles, CodeBuild, EventBridge ------------------------------------------------------


def _create_roles(iam: Any, names: BaseNames, tags: dict[str, str]) -> _Roles:
    execution = _create_role(iam, names.execution_role, "ecs-tasks.amazonaws.com", tags)
    # Inline rather than the AWS-managed AmazonECSTaskExecutionRolePolicy: moto does not
    # load AWS-managed policies unless MOTO_IAM_LOAD_MANAGED_POLICIES is set.
    iam.put_role_policy(
        RoleName=names.execution_role,
        PolicyName="pull-images-and-write-logs",
        PolicyDocument=json.dumps(EXECUTION_POLICY),
    )
    task = _create_role(iam, names.task_role, "ecs-tasks.amazonaws.com", tags)
    codebuild = _create_role(iam, names.codebuild_role, "codebuild.amazonaws.com", tags)
    return _Roles(execution, task, codebuild)


def _create_role(iam: Any, name: str, service: str, tags: dict[str, str]) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=_key_value(tags)
    )["Role"]
    return str(role["Arn"])


def _create_build_project(
    codebuild: Any, names: BaseNames, role_arn: str, tags: dict[str, str]
) -> None:
    codebuild.create_project(
        name=names.codebuild_project,
        description="branchenv: builds a branch's image and pushes it to ECR",
        # Each build overrides the source (the branch's repository at its sha). moto insists
        # on a location even for NO_SOURCE, so a placeholder is given.
        source={
            "type": "NO_SOURCE",
            "location": "overridden-per-build",
            "buildspec": "version: 0.2\nphases: {}\n",
        },
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
            "environmentVariables": [
                {"name": "ECR_REPOSITORY", "value": names.ecr_repository, "type": "PLAINTEXT"}
            ],
        },
        serviceRole=role_arn,
        tags=_lower_key_value(tags),
    )


def _create_event_bus(events: Any, name: str, tags: dict[str, str]) -> None:
    events.create_event_bus(Name=name, Tags=_key_value(tags))


def _key_value(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _lower_key_value(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]
