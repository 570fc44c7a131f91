# --- the work queue: webhooks and AWS events become messages, the worker converges -------
#
# FIFO: one message group per environment keeps a branch's work in order; the GitHub
# delivery id deduplicates redelivered webhooks. A message that fails five times goes to
# the dead-letter queue (kept 14 days) instead of blocking its branch forever.

resource "aws_sqs_queue" "work_dead_letters" {
  name                      = local.names.dead_letter_queue
  fifo_queue                = true
  message_retention_seconds = 14 * 24 * 3600
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_sqs_queue" "work" {
  name                        = local.names.queue
  fifo_queue                  = true
  content_based_deduplication = false
  # AWS's advice for a Lambda event source: at least six times the function's timeout.
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds
  sqs_managed_sse_enabled    = true
  tags                       = local.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.work_dead_letters.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "work_dead_letters" {
  queue_url = aws_sqs_queue.work_dead_letters.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.work.arn]
  })
}
