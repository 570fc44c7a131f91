# Inputs of the branchenv base infrastructure. Every variable is typed and described
# (tests/terraform/test_module.py checks it).

# --- the installation -------------------------------------------------------------------

variable "app_name" {
  type        = string
  description = "Name of this branchenv installation (one per application): prefixes every shared resource and is BRANCHENV_APP_NAME. Lower-case letters, digits and '-', 2 to 23 characters (an ECR repository name needs 2) so that '<app_name>-previews' fits the 32-character load balancer name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,21}[a-z0-9]$", var.app_name))
    error_message = "app_name must be 2 to 23 lower-case letters, digits or '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every shared resource (the branchenv:base and branchenv:app tags are always added)."
  default     = {}
}

# --- network ----------------------------------------------------------------------------

variable "vpc_id" {
  type        = string
  description = "ID of the existing VPC the load balancer and the preview tasks run in."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets (at least two availability zones) for the internet-facing load balancer."

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "An application load balancer needs subnets in at least two availability zones."
  }
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets for the preview tasks; they need a route to ECR and CloudWatch Logs (NAT gateway or VPC endpoints)."

  validation {
    condition     = length(var.private_subnet_ids) >= 1
    error_message = "Give at least one private subnet for the preview tasks."
  }
}

# --- DNS --------------------------------------------------------------------------------

variable "hosted_zone_id" {
  type        = string
  description = "Route53 public hosted zone that holds the preview domain: the wildcard certificate is validated and every <slug>.<preview_domain> record is written there."
}

variable "preview_domain" {
  type        = string
  description = "Domain under which previews are served, e.g. preview.example.com: each branch gets https://<slug>.<preview_domain>."

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.preview_domain)) && length(var.preview_domain) <= 111
    error_message = "preview_domain must be a lower-case DNS name of at most 111 characters, such as preview.example.com: <slug>.<preview_domain> must fit the 128 characters of a load balancer host-header rule, with at least 16 left for the slug."
  }
}

# --- the previews -----------------------------------------------------------------------

variable "container_port" {
  type        = number
  description = "Default port the application's container listens on (a repository's branchenv.yml may ask for another); the load balancer sends traffic there. Must lie inside container_port_range."
  default     = 8080

  validation {
    condition     = var.container_port >= 1 && var.container_port <= 65535
    error_message = "container_port must be between 1 and 65535."
  }
}

# VPC user guide, "Security group rules": a rule opens one protocol on a port range
# (from_port to to_port, both included).
variable "container_port_range" {
  type = object({
    from = number
    to   = number
  })
  description = "Ports a repository's branchenv.yml may ask for as its container_port (both ends included): the load balancer may reach the tasks on exactly these (both security group rules open them), and the worker refuses a branchenv.yml port outside them with a clear error. The default, 80 to 65535, admits every port a web application listens on (80 for nginx images, 3000, 5000, 8000, 8080, ...) and leaves out only the system ports below 80 (SSH, SMTP, DNS), which no preview serves HTTP on; the path is open to the load balancer's own security group only, never to the internet."
  default = {
    from = 80
    to   = 65535
  }

  validation {
    condition = (
      var.container_port_range.from >= 1 && var.container_port_range.to <= 65535 &&
      var.container_port_range.from <= var.container_port_range.to &&
      floor(var.container_port_range.from) == var.container_port_range.from &&
      floor(var.container_port_range.to) == var.container_port_range.to
    )
    error_message = "container_port_range must be whole ports with 1 <= from <= to <= 65535, e.g. { from = 80, to = 65535 }."
  }
}

variable "health_check_path" {
  type        = string
  description = "Path the load balancer polls on each preview; a preview is ready when it answers 200-399 there."
  default     = "/"

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "health_check_path must start with '/'."
  }
}

variable "image_source" {
  type        = string
  description = "Where preview images come from: 'build' (CodeBuild builds the branch's Dockerfile), 'ci' (your CI pushes <sha> tags to the ECR repository) or 'retag' (an existing image is tagged for the branch)."
  default     = "build"

  validation {
    condition     = contains(["build", "ci", "retag"], var.image_source)
    error_message = "image_source must be one of build, ci, retag."
  }
}

variable "retag_pattern" {
  type        = string
  description = "With image_source = \"retag\": the tag of the image to run for a commit, with {sha} or {short_sha}, e.g. ci-{sha}."
  default     = ""
}

variable "build_repository_url" {
  type        = string
  description = "HTTPS clone URL of the application's GitHub repository, e.g. https://github.com/example-org/shop.git: CodeBuild builds its commits (required when image_source is \"build\")."
  default     = ""

  validation {
    condition     = var.build_repository_url == "" || can(regex("^https://", var.build_repository_url))
    error_message = "build_repository_url must be an https:// clone URL."
  }
}

variable "spot" {
  type        = bool
  description = "Run previews on Fargate Spot (about 70% cheaper; AWS may stop a task with two minutes' notice and the service replaces it)."
  default     = true
}

variable "preview_log_retention_days" {
  type        = number
  description = "Days CloudWatch keeps the logs of previews and of image builds."
  default     = 7

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.preview_log_retention_days)
    error_message = "preview_log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "image_retention_days" {
  type        = number
  description = "Days after which an image that no branch tag points at any more is deleted from ECR."
  default     = 30
}

variable "preview_secret_arn_prefixes" {
  type        = list(string)
  description = "ARN prefixes of the Secrets Manager secrets and SSM parameters previews may receive (the `secrets` of branchenv.yml), e.g. arn:aws:ssm:eu-west-1:123456789012:parameter/shop/. The task execution role may read exactly these."
  default     = []

  validation {
    condition     = alltrue([for prefix in var.preview_secret_arn_prefixes : can(regex("^arn:aws[a-z-]*:(ssm|secretsmanager):", prefix))])
    error_message = "Each prefix must be an SSM parameter or Secrets Manager ARN prefix."
  }
}

variable "container_insights" {
  type        = bool
  description = "Turn on ECS Container Insights for the cluster (extra CloudWatch metrics, billed per metric)."
  default     = false
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the load balancer from deletion; `branchenv destroy-all` needs it off."
  default     = false
}

# --- integrations -----------------------------------------------------------------------

variable "allowed_repositories" {
  type        = list(string)
  description = "GitHub repositories (owner/name) whose webhooks are accepted; empty accepts any repository that signs with the webhook secret."
  default     = []
}

variable "github_app_id" {
  type        = string
  description = "ID of the GitHub App branchenv acts as (App settings → About → App ID), instead of a token; empty uses the github-token secret. Its private key goes into the github-app-private-key secret."
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]*)?$", var.github_app_id))
    error_message = "github_app_id must be the App's numeric ID, or empty."
  }
}

variable "github_app_installation_id" {
  type        = string
  description = "ID of the GitHub App's installation on the organisation or account that owns the repositories (the number at the end of the installation's settings URL); required with github_app_id."
  default     = ""

  validation {
    condition     = can(regex("^([1-9][0-9]*)?$", var.github_app_installation_id))
    error_message = "github_app_installation_id must be the installation's numeric ID, or empty."
  }
}

variable "slack_channel" {
  type        = string
  description = "Slack channel (ID or #name) for preview notifications; empty sends none. The bot token goes into the slack-token secret."
  default     = ""
}

# API Gateway developer guide, "x-amazon-apigateway-authtype property" (awsSigv4: AWS_IAM
# authorization) and "Control access to a REST API with IAM permissions" (execute-api:Invoke).
variable "dashboard_auth" {
  type        = string
  description = "Who may open the QA dashboard (GET /, /api/environments): 'api_key' (the X-Api-Key header or ?key= must be a key in the dashboard-key secret) or 'iam' (API Gateway requires AWS_IAM, i.e. SigV4-signed requests from a principal allowed execute-api:Invoke on the dashboard_execute_api_arn output; a plain browser cannot sign). The GitHub webhook is never behind IAM: it proves itself with its signature. 'none' is for the local stack only and is refused here."
  default     = "api_key"

  validation {
    condition     = contains(["api_key", "iam"], var.dashboard_auth)
    error_message = "dashboard_auth must be \"api_key\" or \"iam\" (an open dashboard, \"none\", is for the local stack only)."
  }
}

# --- the Lambda functions ---------------------------------------------------------------

variable "worker_timeout_seconds" {
  type        = number
  description = "Timeout of the worker Lambda; the work queue's visibility timeout is six times this (AWS's advice for SQS event sources; Lambda refuses an event source whose queue's visibility timeout is below the function's timeout)."
  default     = 300

  validation {
    condition     = var.worker_timeout_seconds >= 30 && var.worker_timeout_seconds <= 900
    error_message = "worker_timeout_seconds must be between 30 and 900."
  }
}

# Lambda: "ScalingConfig" API reference (MaximumConcurrency, 2 to 1000) and "Configuring
# scaling behavior for SQS event source mappings" (FIFO: at most one invocation per message
# group). Route53 developer guide, "Throttling for Amazon Route 53 API requests" (the
# account-wide request rate: 5 per second for years, 10 with bursts of 50 since its update).
variable "worker_max_concurrency" {
  type        = number
  description = "Most worker invocations the work queue's event source runs at once (its scaling_config.maximum_concurrency; Lambda accepts 2 to 1000). One converge reads its DNS record once and writes it at most once, and takes about a second of AWS calls, so 5 at once stays near Route53's long-standing limit of 5 requests per second for the whole account (now 10, with bursts of 50; botocore retries a throttled call); raise it only if the rest of the account leaves Route53 room. A FIFO queue never runs more at once than it has message groups (environments)."
  default     = 5

  validation {
    condition     = var.worker_max_concurrency >= 2 && var.worker_max_concurrency <= 1000 && floor(var.worker_max_concurrency) == var.worker_max_concurrency
    error_message = "worker_max_concurrency must be a whole number from 2 to 1000 (Lambda's range for an SQS event source's maximum concurrency)."
  }
}

# SQS developer guide, "Using dead-letter queues in Amazon SQS" (maxReceiveCount); Lambda
# developer guide, "Handling errors for an SQS event source in Lambda".
variable "max_receive_count" {
  type        = number
  description = "Receives after which SQS moves a work message to the dead-letter queue (the redrive policy's maxReceiveCount; SQS accepts 1 to 1000, branchenv needs at least 5). A waiting step makes its message visible again after its own backoff (2, 4, 8 ... 60 s), and the worker stops waiting before the last receive (and after at most 19 receives, about 14 minutes, whatever this says), so legitimate waits never reach the dead-letter queue; only messages that keep failing do, and a larger value gives them longer."
  default     = 20

  validation {
    condition     = var.max_receive_count >= 5 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 5 to 1000: SQS accepts up to 1000, and with fewer than 5 receives a wait would give up after a few seconds."
  }
}

variable "lambda_memory_mb" {
  type        = number
  description = "Memory of each Lambda function (CPU grows with it)."
  default     = 256
}

variable "lambda_log_retention_days" {
  type        = number
  description = "Days CloudWatch keeps the Lambda functions' logs."
  default     = 30
}

variable "build_compute_type" {
  type        = string
  description = "CodeBuild compute size of image builds (CodeBuild user guide, \"Build environment compute modes and types\"): BUILD_GENERAL1_SMALL (3 GB, 2 vCPU), _MEDIUM (7 GB, 4 vCPU), _LARGE (15 GB, 8 vCPU), ..."
  default     = "BUILD_GENERAL1_SMALL"

  validation {
    condition     = can(regex("^BUILD_GENERAL1_(SMALL|MEDIUM|LARGE|XLARGE|2XLARGE)$", var.build_compute_type))
    error_message = "build_compute_type must be BUILD_GENERAL1_SMALL, _MEDIUM, _LARGE, _XLARGE or _2XLARGE."
  }
}

variable "build_cache_fallback_branch" {
  type        = string
  description = "Slug of the branch whose build cache (ECR tag cache-<slug>) a branch's first build reads before it has its own; write it from your default branch's CI with the same docker buildx --cache-to (README, \"Cached image builds\")."
  default     = "main"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.build_cache_fallback_branch))
    error_message = "build_cache_fallback_branch must be a DNS label (the branch's slug): a-z, 0-9 and '-'."
  }
}

variable "load_balancer_count" {
  type        = number
  description = "Load balancers in the preview pool. Each takes at most 100 previews (ELB: 100 target groups per load balancer, not adjustable; 100 rules per listener by default); add one before the live previews reach 100 per load balancer. Each extra one costs about 23.73 USD a month idle (README, \"What it costs\")."
  default     = 1

  validation {
    condition     = var.load_balancer_count >= 1 && var.load_balancer_count <= 5 && floor(var.load_balancer_count) == var.load_balancer_count
    error_message = "load_balancer_count must be a whole number from 1 to 5 (500 previews): every function carries the pool in BRANCHENV_LISTENERS, and Lambda allows 4 KB of environment variables in all."
  }
}
