# --- the preview load balancers: HTTPS with a wildcard certificate, a helpful 404 ---------
#
# var.load_balancer_count load balancers (an ALB takes at most 100 target groups, not
# adjustable, and 100 rules per listener by default: Elastic Load Balancing user guide,
# "Quotas for your Application Load Balancers"), each with its HTTPS listener. The worker
# adds one host-header rule per environment to one of the listeners (BRANCHENV_LISTENERS,
# every listener of the pool); anything no rule matches gets the 404 below. The first is
# named <app>-previews, the others <app>-previews-<n> (as the local stack names them).

locals {
  not_found_body = "No preview environment here: push a branch to create one (branchenv)."
  load_balancer_names = [
    for n in range(1, var.load_balancer_count + 1) :
    n == 1 ? local.names.load_balancer : "${local.names.load_balancer}-${n}"
  ]
}

moved {
  from = aws_lb.previews
  to   = aws_lb.previews[0]
}

moved {
  from = aws_lb_listener.https
  to   = aws_lb_listener.https[0]
}

moved {
  from = aws_lb_listener.http
  to   = aws_lb_listener.http[0]
}

resource "aws_lb" "previews" {
  #checkov:skip=CKV_AWS_91:Access logs need an S3 bucket with its own policy and lifecycle; previews are short-lived test copies. Add a bucket and access_logs if your organisation requires them.
  #checkov:skip=CKV2_AWS_28:A WAF web ACL costs at least 5 USD a month plus rules; previews are test copies. Attach one if your organisation requires it.
  #checkov:skip=CKV_AWS_150:Deletion protection is the deletion_protection variable, off by default so that `branchenv destroy-all` can remove the installation.
  count                      = var.load_balancer_count
  name                       = local.load_balancer_names[count.index]
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  tags                       = local.tags

  lifecycle {
    precondition {
      condition     = length(local.load_balancer_names[count.index]) <= 32
      error_message = "Load balancer names are at most 32 characters: with load_balancer_count above 1, app_name must leave room for -previews-<n>."
    }
  }
}

resource "aws_acm_certificate" "previews" {
  domain_name       = "*.${var.preview_domain}"
  validation_method = "DNS"
  tags              = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for option in aws_acm_certificate.previews.domain_validation_options : option.domain_name => option
  }

  zone_id         = var.hosted_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 60
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "previews" {
  certificate_arn         = aws_acm_certificate.previews.arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}

resource "aws_lb_listener" "https" {
  count             = var.load_balancer_count
  load_balancer_arn = aws_lb.previews[count.index].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.previews.certificate_arn
  tags              = local.tags

  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = local.not_found_body
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "http" {
  count             = var.load_balancer_count
  load_balancer_arn = aws_lb.previews[count.index].arn
  port              = 80
  protocol          = "HTTP"
  tags              = local.tags

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}
