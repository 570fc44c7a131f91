# --- the work queue: webhooks and AWS events become messages, the worker converges -------
#
# FIFO: one message group per environment keeps a branch's work in order; the GitHub
# delivery id deduplicates redelivered webhooks. A waiting step makes its message visible
# again after its own backoff (ChangeMessageVisibility, 2 s doubling to 60 s) instead of the
# visibility timeout, and gives up waiting before the last receive, so var.max_receive_count
# (20) receives hold every legitimate wait; a message that keeps failing goes to the
# dead-letter queue (kept 14 days) instead of blocking its branch forever. SQS developer
# guide, "Using dead-letter queues in Amazon SQS" (maxReceiveCount) and "Amazon SQS
# visibility timeout" (ChangeMessageVisibility).

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
  # At least six times the function's timeout (Lambda developer guide, "Creating and
  # configuring an Amazon SQS event source mapping"); Lambda refuses an event source whose
  # queue's visibility timeout is below the function's timeout.
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds
  sqs_managed_sse_enabled    = true
  tags                       = local.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.work_dead_letters.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "work_dead_letters" {
  queue_url = aws_sqs_queue.work_dead_letters.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.work.arn]
  })
}
