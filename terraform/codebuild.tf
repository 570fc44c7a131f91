# --- CodeBuild: builds a branch's image from its Dockerfile (image_source = "build") -----
#
# The project's source is the application's repository; each build the worker starts names
# the commit (sourceVersion) and the tags, and buildspec.yml builds and pushes the image.

resource "aws_cloudwatch_log_group" "previews" {
  #checkov:skip=CKV_AWS_158:Preview logs are encrypted by CloudWatch Logs' own key; a customer-managed KMS key adds cost and key administration.
  #checkov:skip=CKV_AWS_338:Preview logs are kept for preview_log_retention_days (7 by default), deliberately less than a year.
  name              = "${local.preview_log_group_prefix}/previews"
  retention_in_days = var.preview_log_retention_days
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "builds" {
  #checkov:skip=CKV_AWS_158:Build logs are encrypted by CloudWatch Logs' own key; a customer-managed KMS key adds cost and key administration.
  #checkov:skip=CKV_AWS_338:Build logs of previews are kept for preview_log_retention_days (7 by default), deliberately less than a year.
  name              = "/branchenv/${var.app_name}-build"
  retention_in_days = var.preview_log_retention_days
  tags              = local.tags
}

data "aws_iam_policy_document" "codebuild_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "codebuild" {
  name               = local.names.codebuild_role
  description        = "branchenv ${var.app_name}: CodeBuild builds preview images and pushes them to ECR"
  assume_role_policy = data.aws_iam_policy_document.codebuild_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "codebuild" {
  statement {
    sid       = "WriteBuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.builds.arn}:*"]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid = "PushPreviewImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.previews.arn]
  }
}

resource "aws_iam_role_policy" "codebuild" {
  name   = "build-and-push-images"
  role   = aws_iam_role.codebuild.id
  policy = data.aws_iam_policy_document.codebuild.json
}

resource "aws_codebuild_project" "images" {
  #checkov:skip=CKV_AWS_316:Privileged mode is required to run the Docker daemon that builds the image.
  name          = local.names.codebuild_project
  description   = "branchenv ${var.app_name}: builds a branch's image and pushes it to ECR"
  service_role  = aws_iam_role.codebuild.arn
  build_timeout = 30
  tags          = local.tags

  source {
    type            = var.build_repository_url == "" ? "NO_SOURCE" : "GITHUB"
    location        = var.build_repository_url == "" ? null : var.build_repository_url
    git_clone_depth = var.build_repository_url == "" ? null : 1
    buildspec       = file("${path.module}/buildspec.yml")
  }

  lifecycle {
    precondition {
      condition     = var.image_source != "build" || var.build_repository_url != ""
      error_message = "image_source = \"build\" needs build_repository_url: the HTTPS clone URL of the repository CodeBuild builds."
    }
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type            = "LINUX_CONTAINER"
    image           = "aws/codebuild/standard:7.0"
    compute_type    = var.build_compute_type
    privileged_mode = true

    environment_variable {
      name  = "ECR_REPOSITORY_URL"
      value = aws_ecr_repository.previews.repository_url
    }

    # The build cache a branch falls back to before its own exists (buildspec.yml).
    environment_variable {
      name  = "IMAGE_DEFAULT_CACHE_TAG"
      value = "cache-${var.build_cache_fallback_branch}"
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.builds.name
    }
  }
}
