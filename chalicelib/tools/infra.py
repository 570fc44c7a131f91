"""The one description of the base infrastructure: its outputs and how they become settings.

Terraform (terraform/outputs.tf) and the local bootstrap (chalicelib/local/bootstrap.py)
both produce a :class:`BaseInfrastructure`; the Lambda's environment is
:meth:`BaseInfrastructure.environment`. tests/terraform checks that every field here is a
Terraform output of the same name (except the few marked :data:`NOT_AN_OUTPUT`, which
Terraform sets from its variables or does not have) and that the Lambda definition sets
every variable :meth:`environment` returns, so the two cannot drift silently.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from chalicelib.domain.settings import DEFAULT_CONTAINER_PORTS, PREFIX, Listener

# Field metadata: this field is not a Terraform output (see output_names()).
NOT_AN_OUTPUT = "branchenv:not-a-terraform-output"


@dataclass(frozen=True)
class BaseInfrastructure:
    """Names and identifiers of the shared resources every preview environment uses."""

    app_name: str
    region: str
    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    task_security_group_id: str
    cluster_name: str
    listener_arn: str
    alb_dns_name: str
    alb_zone_id: str
    hosted_zone_id: str
    preview_domain: str
    ecr_repository_name: str
    ecr_repository_url: str
    queue_url: str
    dead_letter_queue_url: str
    table_name: str
    codebuild_project_name: str
    execution_role_arn: str
    task_role_arn: str
    event_bus_name: str
    # Load balancers after the first, each one more entry of the listener pool (the local
    # stack's --load-balancers N); Terraform makes one, so this is not an output.
    more_listeners: tuple[Listener, ...] = field(default=(), metadata={NOT_AN_OUTPUT: True})
    # The ports the security groups open on the path ALB -> tasks; Terraform sets
    # BRANCHENV_CONTAINER_PORTS from its variable container_port_range instead.
    container_ports: tuple[int, int] = field(
        default=DEFAULT_CONTAINER_PORTS, metadata={NOT_AN_OUTPUT: True}
    )
    # The first load balancer's waker target group (the others' are on more_listeners);
    # terraform/lambda.tf writes its own into BRANCHENV_LISTENERS, so this is not an output.
    waker_target_group_arn: str | None = field(default=None, metadata={NOT_AN_OUTPUT: True})

    @classmethod
    def output_names(cls) -> tuple[str, ...]:
        """The Terraform outputs that must exist, one per field (but those marked not)."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get(NOT_AN_OUTPUT))

    def listeners(self) -> tuple[Listener, ...]:
        """The listener pool: the first load balancer's listener, then the others'."""
        first = Listener(
            self.listener_arn, self.alb_dns_name, self.alb_zone_id, self.waker_target_group_arn
        )
        return (first, *self.more_listeners)

    def environment(self) -> dict[str, str]:
        """The Lambda environment variables (read by Settings) for this infrastructure."""
        listeners = [_listener_json(item) for item in self.listeners()]
        values = {
            "APP_NAME": self.app_name,
            "QUEUE_URL": self.queue_url,
            "TABLE": self.table_name,
            "CLUSTER": self.cluster_name,
            "VPC_ID": self.vpc_id,
            "SUBNETS": ",".join(self.private_subnet_ids),
            "SECURITY_GROUPS": self.task_security_group_id,
            "LISTENERS": json.dumps(listeners, separators=(",", ":")),
            "HOSTED_ZONE_ID": self.hosted_zone_id,
            "PREVIEW_DOMAIN": self.preview_domain,
            "ECR_REPOSITORY": self.ecr_repository_name,
            "EXECUTION_ROLE_ARN": self.execution_role_arn,
            "TASK_ROLE_ARN": self.task_role_arn,
            "CODEBUILD_PROJECT": self.codebuild_project_name,
            "EVENT_BUS": self.event_bus_name,
            "CONTAINER_PORTS": f"{self.container_ports[0]}-{self.container_ports[1]}",
        }
        env = {PREFIX + key: value for key, value in values.items()}
        env["AWS_REGION"] = self.region
        return env


def _listener_json(item: Listener) -> dict[str, str]:
    """One entry of BRANCHENV_LISTENERS (chalicelib/domain/settings_env.py reads it)."""
    entry = {"listener_arn": item.listener_arn, "dns_name": item.dns_name, "zone_id": item.zone_id}
    if item.waker_target_group_arn is not None:
        entry["waker_target_group_arn"] = item.waker_target_group_arn
    return entry
