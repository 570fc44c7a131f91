# --- what the branchenv Lambda functions may do --------------------------------------------
#
# Exactly the AWS actions the code calls, and no other: tests/terraform/test_iam.py reads
# every gateway in chalicelib/aws/ and fails when a call has no action here, or when an
# action here is called by nothing (except the few listed there as needed indirectly,
# marked "indirect" below). Resources are this installation's; what the worker creates per
# environment is allowed only with the tag branchenv:managed=true (aws:RequestTag on
# create, aws:ResourceTag on change and delete) where the service supports tag conditions.

locals {
  arn_prefix = {
    ecs   = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
    elb   = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}"
    route = "arn:${local.partition}:route53:::hostedzone/${var.hosted_zone_id}"
  }
  preview_services      = "${local.arn_prefix.ecs}:service/${local.names.cluster}/*"
  preview_target_groups = "${local.arn_prefix.elb}:targetgroup/be-*/*"
  # Every load balancer of the pool (alb.tf): <app>-previews and <app>-previews-<n>.
  preview_rules     = "${local.arn_prefix.elb}:listener-rule/app/${local.names.load_balancer}*/*"
  preview_listeners = "${local.arn_prefix.elb}:listener/app/${local.names.load_balancer}*/*"
}

data "aws_iam_policy_document" "lambda" {
  # --- the store, the queue, secrets, events ---------------------------------------------

  statement {
    sid = "EnvironmentStore"
    actions = [
      "dynamodb:BatchGetItem", # how many rules each listener of the pool holds, in one read
      "dynamodb:DeleteItem",   # a released priority claim
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Scan",
      "dynamodb:UpdateItem", # the count of claims beside each listener
    ]
    resources = [aws_dynamodb_table.environments.arn]
  }

  statement {
    sid = "WorkQueue"
    actions = [
      "sqs:SendMessage",
      # a waiting step makes its message visible again after its own backoff
      "sqs:ChangeMessageVisibility",
      # indirect: the worker's SQS event source polls the queue with the function's role
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.work.arn]
  }

  # The reaper's sweep looks at the dead letters (never deletes them) and counts them
  # (GetQueueAttributes: ApproximateNumberOfMessages*) to alert in Slack.
  statement {
    sid       = "ReadDeadLetters"
    actions   = ["sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    resources = [aws_sqs_queue.work_dead_letters.arn]
  }

  statement {
    sid       = "ReadCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for secret in aws_secretsmanager_secret.credentials : secret.arn]
  }

  statement {
    sid       = "PublishStateChanges"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.branchenv.arn]
  }

  statement {
    sid       = "WriteOwnLogs" # indirect: the Lambda runtime writes the functions' logs
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  # --- images ------------------------------------------------------------------------------

  statement {
    sid = "PreviewImages"
    actions = [
      "ecr:BatchDeleteImage",
      "ecr:BatchGetImage",
      "ecr:DescribeRepositories",
      "ecr:ListImages",
      "ecr:PutImage",
    ]
    resources = [aws_ecr_repository.previews.arn]
  }

  statement {
    sid       = "BuildImages"
    actions   = ["codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"]
    resources = [aws_codebuild_project.images.arn]
  }

  # The reaper finds this installation's target groups and services by their tags, in one
  # paged GetResources, instead of describing everything in the region. GetResources has
  # no resource-level permissions (Service Authorization Reference, "Actions, resources,
  # and condition keys for Amazon Resource Group Tagging API").
  statement {
    sid       = "FindTaggedResources"
    actions   = ["tag:GetResources"]
    resources = ["*"]
  }

  # The reaper reads each awake preview's RequestCount (AWS/ApplicationELB, by load
  # balancer and target group) to put idle ones to sleep. GetMetricData has no
  # resource-level permissions (Service Authorization Reference, "Actions, resources, and
  # condition keys for Amazon CloudWatch": no resource type for GetMetricData).
  statement {
    sid       = "ReadRequestCounts"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }

  # --- ECS: task definitions and services ----------------------------------------------------

  statement {
    sid       = "RegisterTaggedTaskDefinitions"
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = ["*"] # no resource-level permissions
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/branchenv:managed"
      values   = ["true"]
    }
  }

  # The reaper lists this installation's families by prefix, then their ACTIVE revisions.
  # None of these has resource-level permissions (Service Authorization Reference, "Actions,
  # resources, and condition keys for Amazon Elastic Container Service").
  statement {
    sid = "ReadAndRetireTaskDefinitions"
    actions = [
      "ecs:DeregisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitionFamilies",
      "ecs:ListTaskDefinitions",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "CreateTaggedServices"
    actions   = ["ecs:CreateService"]
    resources = [local.preview_services]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/branchenv:managed"
      values   = ["true"]
    }
  }

  statement {
    sid       = "TagOnCreate" # indirect: ECS requires it when tags are given on create
    actions   = ["ecs:TagResource"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["CreateService", "RegisterTaskDefinition"]
    }
  }

  statement {
    sid       = "ChangeOwnServices"
    actions   = ["ecs:DeleteService", "ecs:UpdateService"]
    resources = [local.preview_services]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/branchenv:managed"
      values   = ["true"]
    }
  }

  statement {
    sid       = "ReadServices"
    actions   = ["ecs:DescribeServices"]
    resources = [local.preview_services]
  }

  statement {
    sid       = "ListServices"
    actions   = ["ecs:ListServices"]
    resources = ["*"] # no resource-level permissions
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.previews.arn]
    }
  }

  statement {
    sid       = "PassTaskRoles" # indirect: RegisterTaskDefinition names both roles
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task_execution.arn, aws_iam_role.task.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  # --- load balancer: target groups and host-header rules ----------------------------------

  statement {
    sid       = "CreateTaggedRoutes"
    actions   = ["elasticloadbalancing:CreateRule", "elasticloadbalancing:CreateTargetGroup"]
    resources = [local.preview_target_groups, local.preview_rules, local.preview_listeners]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/branchenv:managed"
      values   = ["true"]
    }
  }

  statement {
    sid       = "TagRoutesOnCreate" # indirect: ELB requires it when tags are given on create
    actions   = ["elasticloadbalancing:AddTags"]
    resources = [local.preview_target_groups, local.preview_rules]
    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateRule", "CreateTargetGroup"]
    }
  }

  statement {
    sid = "ChangeOwnRoutes"
    actions = [
      "elasticloadbalancing:DeleteRule",
      "elasticloadbalancing:DeleteTargetGroup",
      # sleep and wake: a rule forwards to the waker target group (waker.tf), then back
      "elasticloadbalancing:ModifyRule",
      # a changed health check path or port of an existing environment
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
    ]
    resources = [local.preview_target_groups, local.preview_rules]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/branchenv:managed"
      values   = ["true"]
    }
  }

  statement {
    sid = "ReadRoutes"
    actions = [
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"] # Describe* have no resource-level permissions
  }

  # --- DNS: <slug>.<preview_domain> aliases and their owner TXT records ----------------------

  statement {
    sid       = "PreviewRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [local.arn_prefix.route]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = ["*.${var.preview_domain}"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["A", "TXT"]
    }
  }

  statement {
    sid       = "ReadRecords"
    actions   = ["route53:ListResourceRecordSets"]
    resources = [local.arn_prefix.route]
  }
}
