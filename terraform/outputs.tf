# Outputs: one per field of chalicelib/tools/infra.py BaseInfrastructure (same names; checked by
# tests/terraform/test_module.py), then what a person needs to finish the setup.

# --- BaseInfrastructure ----------------------------------------------------------------

output "app_name" {
  description = "Name of this branchenv installation."
  value       = var.app_name
}

output "region" {
  description = "AWS region of the installation."
  value       = local.region
}

output "vpc_id" {
  description = "VPC the previews run in."
  value       = var.vpc_id
}

output "private_subnet_ids" {
  description = "Subnets of the preview tasks."
  value       = var.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group of the preview tasks (traffic only from the load balancer)."
  value       = aws_security_group.tasks.id
}

output "cluster_name" {
  description = "ECS cluster the previews run in."
  value       = aws_ecs_cluster.previews.name
}

output "listener_arn" {
  description = "HTTPS listener of the first load balancer (the listeners output has the whole pool)."
  value       = aws_lb_listener.https[0].arn
}

output "alb_dns_name" {
  description = "DNS name of the preview load balancer (the target of every preview's alias record)."
  value       = aws_lb.previews[0].dns_name
}

output "alb_zone_id" {
  description = "Route53 zone ID of the load balancer, for alias records."
  value       = aws_lb.previews[0].zone_id
}

output "listeners" {
  description = "The listener pool (BRANCHENV_LISTENERS): one {listener_arn, dns_name, zone_id, waker_target_group_arn} per load balancer; the worker adds one host-header rule per preview to one of them, and a sleeping preview's rule forwards to its load balancer's waker target group."
  value       = local.listeners
}

output "hosted_zone_id" {
  description = "Hosted zone the preview records are written to."
  value       = var.hosted_zone_id
}

output "preview_domain" {
  description = "Domain previews are served under: https://<slug>.<preview_domain>."
  value       = var.preview_domain
}

output "ecr_repository_name" {
  description = "ECR repository of the preview images."
  value       = aws_ecr_repository.previews.name
}

output "ecr_repository_url" {
  description = "URL of the ECR repository; with image_source = \"ci\", your CI pushes <url>:<sha> here."
  value       = aws_ecr_repository.previews.repository_url
}

output "queue_url" {
  description = "URL of the work queue (SQS FIFO)."
  value       = aws_sqs_queue.work.url
}

output "dead_letter_queue_url" {
  description = "URL of the work queue's dead-letter queue: messages that failed five times wait here."
  value       = aws_sqs_queue.work_dead_letters.url
}

output "table_name" {
  description = "DynamoDB table of environment records."
  value       = aws_dynamodb_table.environments.name
}

output "codebuild_project_name" {
  description = "CodeBuild project that builds preview images (image_source = \"build\")."
  value       = aws_codebuild_project.images.name
}

output "execution_role_arn" {
  description = "ECS task execution role (pulls images, writes logs)."
  value       = aws_iam_role.task_execution.arn
}

output "task_role_arn" {
  description = "ECS task role of the previews: no permissions until you attach some."
  value       = aws_iam_role.task.arn
}

output "event_bus_name" {
  description = "EventBridge bus that receives branchenv's Environment State Change events."
  value       = aws_cloudwatch_event_bus.branchenv.name
}

# --- for the GitHub webhook and the secrets --------------------------------------------

output "webhook_url" {
  description = "Payload URL for the GitHub webhook (content type application/json)."
  value       = "${module.chalice.EndpointURL}/github/webhook"
}

output "webhook_secret_arn" {
  description = "Secrets Manager secret that holds the GitHub webhook secret; put its value with put-secret-value."
  value       = aws_secretsmanager_secret.credentials["webhook_secret"].arn
}

output "github_token_arn" {
  description = "Secrets Manager secret for the GitHub token (deployments and statuses)."
  value       = aws_secretsmanager_secret.credentials["github_token"].arn
}

output "dashboard_key_arn" {
  description = "Secrets Manager secret for the QA dashboard's API key."
  value       = aws_secretsmanager_secret.credentials["dashboard_key"].arn
}

# With dashboard_auth = "iam": the resource to allow execute-api:Invoke on for the people who
# may read the dashboard (API Gateway developer guide, "Control access to a REST API with IAM
# permissions": arn:...:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>).
# "api" is the stage Chalice deploys (aws_api_gateway_stage.rest_api, one_provider.py).
output "dashboard_execute_api_arn" {
  description = "ARN pattern of the dashboard's methods (GET on the API's stage): allow execute-api:Invoke on it to whoever may read the dashboard when dashboard_auth is \"iam\"."
  value       = "arn:${local.partition}:execute-api:${local.region}:${local.account_id}:${module.chalice.RestAPIId}/api/GET/*"
}

output "slack_token_arn" {
  description = "Secrets Manager secret for the Slack bot token."
  value       = aws_secretsmanager_secret.credentials["slack_token"].arn
}
