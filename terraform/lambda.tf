# --- the branchenv app: Lambda functions and the webhook API from the Chalice package -----
#
# ./chalice holds what `chalice package --pkg-format terraform` generates (chalice.tf.json,
# deployment.zip) and the override file chalicelib/tools/deploy/override.py writes next to it
# (chalice_override.tf.json). `branchenv deploy` makes all three before it runs terraform;
# they are not committed. The override gives every generated function the environment,
# role, timeout and log group below, points the SQS event source at the work queue (with a
# maximum concurrency and partial batch responses), puts the dashboard's methods behind
# AWS_IAM when dashboard_auth is "iam", and replaces Chalice's old Terraform and provider
# pins (see terraform/chalice/README.md).

locals {
  # The listener pool, one entry per load balancer (alb.tf), in BRANCHENV_LISTENERS' shape:
  # with the load balancer's waker target group (waker.tf), where a sleeping preview's rule
  # forwards.
  listeners = [for i, listener in aws_lb_listener.https : {
    listener_arn           = listener.arn
    dns_name               = aws_lb.previews[i].dns_name
    zone_id                = aws_lb.previews[i].zone_id
    waker_target_group_arn = aws_lb_target_group.waker[i].arn
  }]

  # Every variable chalicelib/domain/settings.py reads that this installation sets; tests/terraform
  # checks it covers REQUIRED_VARIABLES and BaseInfrastructure.environment(). AWS_REGION is
  # set by Lambda itself.
  lambda_environment = {
    BRANCHENV_APP_NAME             = var.app_name
    BRANCHENV_QUEUE_URL            = aws_sqs_queue.work.url
    BRANCHENV_TABLE                = aws_dynamodb_table.environments.name
    BRANCHENV_CLUSTER              = aws_ecs_cluster.previews.name
    BRANCHENV_VPC_ID               = var.vpc_id
    BRANCHENV_SUBNETS              = join(",", var.private_subnet_ids)
    BRANCHENV_SECURITY_GROUPS      = aws_security_group.tasks.id
    BRANCHENV_LISTENERS            = jsonencode(local.listeners)
    BRANCHENV_HOSTED_ZONE_ID       = var.hosted_zone_id
    BRANCHENV_PREVIEW_DOMAIN       = var.preview_domain
    BRANCHENV_ECR_REPOSITORY       = aws_ecr_repository.previews.name
    BRANCHENV_EXECUTION_ROLE_ARN   = aws_iam_role.task_execution.arn
    BRANCHENV_TASK_ROLE_ARN        = aws_iam_role.task.arn
    BRANCHENV_CODEBUILD_PROJECT    = aws_codebuild_project.images.name
    BRANCHENV_EVENT_BUS            = aws_cloudwatch_event_bus.branchenv.name
    BRANCHENV_CONTAINER_PORT       = tostring(var.container_port)
    BRANCHENV_CONTAINER_PORTS      = "${var.container_port_range.from}-${var.container_port_range.to}"
    BRANCHENV_HEALTH_CHECK_PATH    = var.health_check_path
    BRANCHENV_IMAGE_SOURCE         = var.image_source
    BRANCHENV_RETAG_PATTERN        = var.retag_pattern
    BRANCHENV_SPOT                 = tostring(var.spot)
    BRANCHENV_ALLOWED_REPOSITORIES = join(",", var.allowed_repositories)
    BRANCHENV_SLACK_CHANNEL        = var.slack_channel
    BRANCHENV_WEBHOOK_SECRET_ARN   = aws_secretsmanager_secret.credentials["webhook_secret"].arn
    # A GitHub App replaces the token: settings.py refuses both at once.
    BRANCHENV_GITHUB_TOKEN_ARN           = local.github_app ? "" : aws_secretsmanager_secret.credentials["github_token"].arn
    BRANCHENV_GITHUB_APP_ID              = var.github_app_id
    BRANCHENV_GITHUB_APP_INSTALLATION_ID = var.github_app_installation_id
    BRANCHENV_GITHUB_APP_PRIVATE_KEY_ARN = local.github_app ? aws_secretsmanager_secret.credentials["github_app_private_key"].arn : ""
    BRANCHENV_SLACK_TOKEN_ARN            = aws_secretsmanager_secret.credentials["slack_token"].arn
    BRANCHENV_DASHBOARD_API_KEY_ARN      = aws_secretsmanager_secret.credentials["dashboard_key"].arn
    # iam: the package's dashboard methods get AWS_IAM authorization (module "chalice").
    BRANCHENV_DASHBOARD_AUTH          = var.dashboard_auth
    BRANCHENV_ALLOWED_SECRET_PREFIXES = join(",", var.preview_secret_arn_prefixes)
  }
}

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.app_name}-lambda"
  description        = "branchenv ${var.app_name}: the webhook intake, the worker and the event handlers"
  assume_role_policy = data.aws_iam_policy_document.lambda_trust.json
  tags               = local.tags

  # What chalicelib/domain/settings.py would refuse at start-up, refused at plan time instead.
  lifecycle {
    precondition {
      condition     = var.image_source != "retag" || can(regex("\\{(short_)?sha\\}", var.retag_pattern))
      error_message = "image_source = \"retag\" needs retag_pattern with {sha} or {short_sha}, e.g. ci-{sha}."
    }
    precondition {
      condition     = (var.github_app_id == "") == (var.github_app_installation_id == "")
      error_message = "A GitHub App needs both github_app_id and github_app_installation_id (or neither, to use the github-token secret)."
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "branchenv"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

module "chalice" {
  source = "./chalice"

  app_name               = var.app_name
  role_arn               = aws_iam_role.lambda.arn
  environment            = local.lambda_environment
  queue_arn              = aws_sqs_queue.work.arn
  worker_timeout_seconds = var.worker_timeout_seconds
  worker_max_concurrency = var.worker_max_concurrency
  dashboard_auth         = var.dashboard_auth
  memory_mb              = var.lambda_memory_mb
  log_group_name         = aws_cloudwatch_log_group.lambda.name
  codebuild_project      = aws_codebuild_project.images.name
  ecr_repository         = aws_ecr_repository.previews.name
  cluster_arn            = aws_ecs_cluster.previews.arn
  ecs_service_arn_prefix = "${local.arn_prefix.ecs}:service/${local.names.cluster}/"
  ecs_task_arn_prefix    = "${local.arn_prefix.ecs}:task/${local.names.cluster}/"
  tags                   = local.tags

  # The role's policy must exist before a function polls the queue with it.
  depends_on = [aws_iam_role_policy.lambda]
}
