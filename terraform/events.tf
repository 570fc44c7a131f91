# --- EventBridge and logs --------------------------------------------------------------
#
# The installation's own bus: branchenv puts an "Environment State Change" event there for
# every state change (chalicelib/aws/events.py), so other tools can subscribe with rules.
#
# The rules for AWS's own events (CodeBuild "Build State Change", ECR "Image Action", ECS
# "Deployment State Change" / "Task State Change") belong to the app's on_cw_event
# handlers: the Chalice package creates them on the default bus, and
# chalicelib/tools/deploy/override.py narrows their patterns to this installation's build project,
# repository and cluster (see terraform/chalice/README.md).

resource "aws_cloudwatch_event_bus" "branchenv" {
  name = local.names.event_bus
  tags = local.tags
}

# One log group for every Lambda function of the installation (each function's
# logging_config points here), so retention is set once.
resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_158:Encrypted by CloudWatch Logs' own key; the logs hold no secrets (branchenv never logs one) and a customer-managed KMS key adds cost and key administration.
  #checkov:skip=CKV_AWS_338:Retention is the lambda_log_retention_days variable (30 by default), deliberately less than a year.
  name              = "/branchenv/${var.app_name}-lambda"
  retention_in_days = var.lambda_log_retention_days
  tags              = local.tags
}
