# branchenv base infrastructure: the shared resources every preview environment uses.
#
# Names follow chalicelib/tools/infra.py (BaseNames); tests/terraform checks that they match and
# that outputs.tf has one output per BaseInfrastructure field. Per-environment resources
# (services, target groups, listener rules, DNS records) are made by the worker, not here.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Keep in step with chalicelib/tools/infra.py BaseNames (tests/terraform/test_names.py).
  names = {
    cluster           = var.app_name
    ecr_repository    = var.app_name
    queue             = "${var.app_name}-work.fifo"
    dead_letter_queue = "${var.app_name}-work-dlq.fifo"
    table             = "${var.app_name}-environments"
    codebuild_project = "${var.app_name}-build"
    event_bus         = var.app_name
    load_balancer     = "${var.app_name}-previews"
    execution_role    = "${var.app_name}-task-execution"
    task_role         = "${var.app_name}-task"
    codebuild_role    = "${var.app_name}-codebuild"
  }

  # Preview tasks log to one group, /branchenv/<app>/previews (chalicelib/domain/names.py
  # log_group), one stream prefix per environment (its slug).
  preview_log_group_prefix = "/branchenv/${var.app_name}"

  tags = merge(var.tags, {
    "branchenv:base" = "true"
    "branchenv:app"  = var.app_name
  })
}
