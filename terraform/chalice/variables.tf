# Inputs of the Chalice package module. chalice.tf.json and deployment.zip are generated
# here by `chalice package`, and chalice_override.tf.json by chalicelib/tools/deploy/override.py, which
# refers to these variables (see README.md in this folder).

variable "app_name" {
  type        = string
  description = "Name of the branchenv installation: function names become <app_name>-<handler>."
}

variable "role_arn" {
  type        = string
  description = "ARN of the IAM role every function runs with (terraform/iam.tf)."
}

variable "environment" {
  type        = map(string)
  description = "Environment variables of every function (the BRANCHENV_* settings)."
}

variable "queue_arn" {
  type        = string
  description = "ARN of the work queue the worker's SQS event source reads."
}

variable "worker_max_concurrency" {
  type        = number
  description = "Maximum concurrency of the worker's SQS event source (2 to 1000)."
}

variable "dashboard_auth" {
  type        = string
  description = "The dashboard's access mode: \"iam\" puts every API method but the GitHub webhook behind AWS_IAM authorization; anything else leaves them open to the app's own check."
}

variable "worker_timeout_seconds" {
  type        = number
  description = "Timeout of the functions that do work (the worker, event handlers, the reaper)."
}

variable "api_timeout_seconds" {
  type        = number
  description = "Timeout of the functions that answer an HTTP request while someone waits: the API (GitHub gives up on a webhook after 10 seconds) and the waker (a person opening a sleeping preview; it reads one record and sends one message)."
  default     = 10
}

variable "memory_mb" {
  type        = number
  description = "Memory of each function."
}

variable "log_group_name" {
  type        = string
  description = "CloudWatch log group every function writes to."
}

variable "codebuild_project" {
  type        = string
  description = "CodeBuild project whose Build State Change events the app handles."
}

variable "ecr_repository" {
  type        = string
  description = "ECR repository whose Image Action events the app handles."
}

variable "cluster_arn" {
  type        = string
  description = "ECS cluster whose deployment and task events the app handles."
}

variable "ecs_service_arn_prefix" {
  type        = string
  description = "ARN prefix of the cluster's services (arn:...:service/<cluster>/), to narrow ECS event rules."
}

variable "ecs_task_arn_prefix" {
  type        = string
  description = "ARN prefix of the cluster's tasks (arn:...:task/<cluster>/), to narrow ECS event rules."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every function."
}
