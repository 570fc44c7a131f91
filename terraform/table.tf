# --- DynamoDB: one table for environment records and listener-priority claims -----------
#
# Key pk (string): env#<slug> or priority#<listener>#<n> (chalicelib/aws/dynamodb.py).
# A deleted environment's record expires through the expires_at TTL attribute.

resource "aws_dynamodb_table" "environments" {
  #checkov:skip=CKV_AWS_119:The table is encrypted at rest with the AWS-owned key (DynamoDB's default, no KMS charges); it holds branch names and states, no secrets, and a customer-managed KMS key adds cost and key administration.
  name         = local.names.table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  tags         = local.tags

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }
}
