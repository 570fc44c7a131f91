# --- Secrets Manager: credentials, read by the Lambda functions by ARN ------------------
#
# Terraform creates the secrets but never their values (they would end up in the state):
# put the values with `aws secretsmanager put-secret-value` (see the README).
# - webhook-secret: the GitHub webhook secret, or a JSON list of them while rotating;
# - github-token: a token that may create deployments and statuses on the repositories;
# - github-app-private-key: only with github_app_id set, the GitHub App's private key
#   (PEM), used instead of the token (the github-token secret is then left unused);
# - slack-token: the Slack bot token (xoxb-...);
# - dashboard-key: the key QA sends to the dashboard (X-Api-Key or ?key=).

locals {
  github_app = var.github_app_id != ""
  secrets = merge(
    {
      webhook_secret = "GitHub webhook secret (a string, or a JSON list of strings while rotating)"
      github_token   = "GitHub token used to create deployments and statuses"
      slack_token    = "Slack bot token used to post preview notifications"
      dashboard_key  = "API key(s) of the QA dashboard (a string, or a JSON list while rotating)"
    },
    local.github_app ? {
      github_app_private_key = "GitHub App private key (PEM) used to mint installation tokens"
    } : {},
  )
}

resource "aws_secretsmanager_secret" "credentials" {
  #checkov:skip=CKV_AWS_149:Encrypted with the account's aws/secretsmanager key; a customer-managed KMS key adds cost and key administration.
  #checkov:skip=CKV2_AWS_57:The values come from GitHub and Slack and are rotated there; rotate them with put-secret-value (the webhook secret accepts a list during rotation).
  for_each = local.secrets

  name                    = "${var.app_name}/${replace(each.key, "_", "-")}"
  description             = "branchenv ${var.app_name}: ${each.value}"
  recovery_window_in_days = 7
  tags                    = local.tags
}
