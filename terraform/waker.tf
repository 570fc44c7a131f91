# --- the waker: what a sleeping preview's URL answers ------------------------------------
#
# An idle preview sleeps: its service scales to 0 and its listener rule forwards to its load
# balancer's waker target group, a Lambda target served by app.py's `waker` function
# (module "chalice", output waker_function_arn), which asks for a wake and answers with a
# page that reloads itself. One target group per load balancer of the pool: a target group
# can be used by one load balancer only (Elastic Load Balancing user guide, "Target groups
# for your Application Load Balancers"). Each load balancer's is named in its entry of
# BRANCHENV_LISTENERS (lambda.tf) as waker_target_group_arn. Named <app>-waker and
# <app>-waker-<n> (shorter than <app>-previews-<n>, which alb.tf keeps within 32), so they
# never match the preview target groups' be-* names in iam.tf, and they carry the base tags
# only (never branchenv:managed), so the worker can neither change nor delete them.
#
# Elastic Load Balancing user guide, "Use Lambda functions as targets of an Application
# Load Balancer": the function must allow elasticloadbalancing.amazonaws.com to invoke it
# (here, from its own target group only), and ELB checks that permission when the function
# is registered, so the attachment waits for the permission.

locals {
  waker_target_group_names = [
    for n in range(1, var.load_balancer_count + 1) :
    n == 1 ? "${var.app_name}-waker" : "${var.app_name}-waker-${n}"
  ]
}

resource "aws_lb_target_group" "waker" {
  count       = var.load_balancer_count
  name        = local.waker_target_group_names[count.index]
  target_type = "lambda"
  # The waker reads `headers` (one value per name); with multi-value headers ELB would send
  # multiValueHeaders instead.
  lambda_multi_value_headers_enabled = false
  tags                               = local.tags

  # A Lambda target group's health check invokes the function each interval; the waker
  # needs none (there is nothing to route around), and it is off by default for Lambda.
  health_check {
    enabled = false
  }
}

resource "aws_lambda_permission" "waker" {
  count         = var.load_balancer_count
  statement_id  = "AllowInvokeFrom-${local.waker_target_group_names[count.index]}"
  action        = "lambda:InvokeFunction"
  function_name = module.chalice.waker_function_arn
  principal     = "elasticloadbalancing.amazonaws.com"
  source_arn    = aws_lb_target_group.waker[count.index].arn
}

resource "aws_lb_target_group_attachment" "waker" {
  count            = var.load_balancer_count
  target_group_arn = aws_lb_target_group.waker[count.index].arn
  target_id        = module.chalice.waker_function_arn

  # RegisterTargets fails with AccessDenied until the function's policy lets ELB invoke it.
  depends_on = [aws_lambda_permission.waker]
}
