# --- security groups: the internet reaches the load balancer, only it reaches the tasks ---

resource "aws_security_group" "alb" {
  name        = "${var.app_name}-alb"
  description = "branchenv preview load balancer: HTTP and HTTPS from anywhere"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.app_name}-alb" })
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS to the previews from anywhere"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a redirect to HTTPS (see aws_lb_listener.http).
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from anywhere, redirected to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  tags              = local.tags
}

# A preview's container_port is any port of var.container_port_range (branchenv.yml chooses;
# the worker refuses one outside it, BRANCHENV_CONTAINER_PORTS), so both ends of the path
# ALB → task open the whole range. A rule covers from_port to to_port, both included (VPC
# user guide, "Security group rules"), and the load balancer's health checks and traffic
# use the target group's port (ELB guide, "Target groups for your Application Load
# Balancers"): both need this path.
resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the preview tasks on the ports previews may use"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = var.container_port_range.from
  to_port                      = var.container_port_range.to
  tags                         = local.tags
}

resource "aws_security_group" "tasks" {
  #checkov:skip=CKV2_AWS_5:The worker attaches this group to every preview's ECS service (BRANCHENV_SECURITY_GROUPS); Terraform creates no service itself.
  name        = "${var.app_name}-tasks"
  description = "branchenv preview tasks: only from the load balancer"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.app_name}-tasks" })
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  #checkov:skip=CKV_AWS_260:The source is the load balancer's security group (referenced_security_group_id), never 0.0.0.0/0; checkov reads a rule without cidr_ipv4 as open to all.
  #checkov:skip=CKV_AWS_25:The source is the load balancer's security group (referenced_security_group_id), never 0.0.0.0/0; checkov reads a rule without cidr_ipv4 as open to all.
  security_group_id            = aws_security_group.tasks.id
  description                  = "From the preview load balancer only, on the ports previews may use"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = var.container_port_range.from
  to_port                      = var.container_port_range.to
  tags                         = local.tags

  # Terraform 1.5 cannot compare two variables in a validation block: checked here instead.
  lifecycle {
    precondition {
      condition     = var.container_port >= var.container_port_range.from && var.container_port <= var.container_port_range.to
      error_message = "container_port (the default port) must lie inside container_port_range: widen the range or choose another default port."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "tasks_out" {
  security_group_id = aws_security_group.tasks.id
  description       = "Previews call out (pull images, write logs, reach their own dependencies)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  tags              = local.tags
}
