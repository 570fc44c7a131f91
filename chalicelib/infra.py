"""The one description of the base infrastructure: its outputs and how they become settings.

Terraform (terraform/outputs.tf) and the local bootstrap (chalicelib/local/bootstrap.py)
both produce a :class:`BaseInfrastructure`; the Lambda's environment is
:meth:`BaseInfrastructure.environment`. tests/terraform checks that every field here is a
Terraform output of the same name and that the Lambda definition sets every variable
:meth:`environment` returns, so the two cannot drift silently.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from chalicelib.settings import PREFIX


@dataclass(frozen=True)
class BaseNames:
    """Names of the shared resources for installation ``app``; terraform/ uses the same."""

    app: str

    @property
    def cluster(self) -> str:
        return self.app

    @property
    def ecr_repository(self) -> str:
        return self.app

    @property
    def queue(self) -> str:
        return f"{self.app}-work.fifo"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.app}-work-dlq.fifo"

    @property
    def table(self) -> str:
        return f"{self.app}-environments"

    @property
    def codebuild_project(self) -> str:
        return f"{self.app}-build"

    @property
    def event_bus(self) -> str:
        return self.app

    @property
    def load_balancer(self) -> str:
        return f"{self.app}-previews"

    @property
    def execution_role(self) -> str:
        return f"{self.app}-task-execution"

    @property
    def task_role(self) -> str:
        return f"{self.app}-task"

    @property
    def codebuild_role(self) -> str:
        return f"{self.app}-codebuild"


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

    @classmethod
    def output_names(cls) -> tuple[str, ...]:
        """The Terraform outputs that must exist, one per field."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def environment(self) -> dict[str, str]:
        """The Lambda environment variables (read by Settings) for this infrastructure."""
        listeners = [
            {
                "listener_arn": self.listener_arn,
                "dns_name": self.alb_dns_name,
                "zone_id": self.alb_zone_id,
            }
        ]
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
        }
        env = {PREFIX + key: value for key, value in values.items()}
        env["AWS_REGION"] = self.region
        return env
