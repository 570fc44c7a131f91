# --- ECS: the cluster the previews run in, and the roles their tasks use -----------------

resource "aws_ecs_cluster" "previews" {
  #checkov:skip=CKV_AWS_65:Container Insights is the container_insights variable, off by default: it is billed per metric and previews are short-lived.
  name = local.names.cluster
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "previews" {
  cluster_name       = aws_ecs_cluster.previews.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  # Each preview service sets its own strategy (Spot with an on-demand base); this default
  # only applies to tasks started without one.
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The execution role: ECS pulls the preview's image and writes its logs with it.
resource "aws_iam_role" "task_execution" {
  name               = local.names.execution_role
  description        = "branchenv ${var.app_name}: ECS pulls preview images and writes their logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task_execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "PullPreviewImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.previews.arn]
  }

  statement {
    sid     = "WritePreviewLogs"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.preview_log_group_prefix}/*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.preview_log_group_prefix}/*:log-stream:*",
    ]
  }

  # Only when previews receive secrets (branchenv.yml `secrets`): exactly the allowed prefixes.
  dynamic "statement" {
    for_each = length(var.preview_secret_arn_prefixes) > 0 ? [var.preview_secret_arn_prefixes] : []

    content {
      sid       = "ReadPreviewSecrets"
      actions   = ["secretsmanager:GetSecretValue", "ssm:GetParameters"]
      resources = [for prefix in statement.value : "${prefix}*"]
    }
  }
}

resource "aws_iam_role_policy" "task_execution" {
  name   = "pull-images-and-write-logs"
  role   = aws_iam_role.task_execution.id
  policy = data.aws_iam_policy_document.task_execution.json
}

# The task role: what the preview's own code may do in AWS. Nothing by default; attach
# policies to it (output task_role_arn) if your application needs AWS access.
resource "aws_iam_role" "task" {
  name               = local.names.task_role
  description        = "branchenv ${var.app_name}: the preview application's own AWS permissions (none by default)"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}
