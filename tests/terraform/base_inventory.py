"""What a base infrastructure is, read back from AWS (moto): the shared resources by name,
with their tags and the settings that matter, so the local stack's bootstrap and Terraform
can be compared (tests/terraform/test_real_provider.py)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws.clients import ClientFactory

Inventory = dict[str, dict[str, Any]]
QUEUE_SETTINGS = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "SqsManagedSseEnabled",
)


def _tags(pairs: list[dict[str, str]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {p[key]: p[value] for p in pairs if p[key].startswith("branchenv:")}


def base_inventory(clients: ClientFactory, app: str) -> Inventory:
    """The base resources of installation ``app`` as AWS describes them."""
    found: Inventory = {}
    ecs = clients.client("ecs")
    for cluster in ecs.describe_clusters(clusters=[app], include=["TAGS"])["clusters"]:
        found.setdefault("cluster", {})[cluster["clusterName"]] = _tags(
            cluster.get("tags", []), "key", "value"
        )
    ecr = clients.client("ecr")
    for repository in ecr.describe_repositories()["repositories"]:
        tags = ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
        found.setdefault("ecr_repository", {})[repository["repositoryName"]] = _tags(tags)
    sqs = clients.client("sqs")
    for url in sqs.list_queues(QueueNamePrefix=app).get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        settings = {k: attributes.get(k) for k in QUEUE_SETTINGS}
        if "RedrivePolicy" in attributes:
            redrive = json.loads(attributes["RedrivePolicy"])
            settings["maxReceiveCount"] = int(redrive["maxReceiveCount"])
            settings["deadLetterTarget"] = redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        settings["tags"] = {k: v for k, v in tags.items() if k.startswith("branchenv:")}
        found.setdefault("queue", {})[url.rsplit("/", 1)[-1]] = settings
    dynamodb = clients.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        described = dynamodb.describe_table(TableName=table)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        tags = dynamodb.list_tags_of_resource(ResourceArn=described["TableArn"])["Tags"]
        found.setdefault("table", {})[table] = {
            "keys": described["KeySchema"],
            "ttl": ttl.get("AttributeName"),
            "tags": _tags(tags),
        }
    iam = clients.client("iam")
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        trust = role["AssumeRolePolicyDocument"]
        services = sorted(
            s["Principal"]["Service"] for s in trust["Statement"] if "Service" in s["Principal"]
        )
        actions: set[str] = set()
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for statement in document["Statement"]:
                listed = statement.get("Action", [])
                actions.update([listed] if isinstance(listed, str) else listed)
        tags = iam.list_role_tags(RoleName=name)["Tags"]
        found.setdefault("role", {})[name] = {
            "trust": services,
            "actions": sorted(actions),
            "tags": _tags(tags),
        }
    codebuild = clients.client("codebuild")
    found["build_project"] = {key: {} for key in codebuild.list_projects()["projects"]}
    events = clients.client("events")
    buses = [b["Name"] for b in events.list_event_buses()["EventBuses"] if b["Name"] != "default"]
    found["event_bus"] = {key: {} for key in buses}
    elbv2 = clients.client("elbv2")
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        arn = balancer["LoadBalancerArn"]
        listeners = elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
        tags = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
        found.setdefault("load_balancer", {})[balancer["LoadBalancerName"]] = {
            "type": balancer["Type"],
            # What a host no rule matches gets, on the listener the previews' rules go to.
            "not_found": [
                action["FixedResponseConfig"]
                for listener in listeners
                for action in listener["DefaultActions"]
                if action["Type"] == "fixed-response"
            ],
            "tags": _tags(tags),
        }
    return found
