output "webhook_url" {
  description = "Payload URL for the GitHub webhook."
  value       = module.branchenv.webhook_url
}

output "webhook_secret_arn" {
  description = "Secret that holds the GitHub webhook secret."
  value       = module.branchenv.webhook_secret_arn
}

output "ecr_repository_url" {
  description = "Where CI pushes images when image_source is \"ci\"."
  value       = module.branchenv.ecr_repository_url
}
