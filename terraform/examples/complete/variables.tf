variable "region" {
  type        = string
  description = "AWS region to install branchenv in."
  default     = "eu-west-1"
}

variable "app_name" {
  type        = string
  description = "Name of the installation (one per application)."
  default     = "shop"
}

variable "vpc_id" {
  type        = string
  description = "ID of the existing VPC."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Public subnets (two availability zones or more) for the load balancer."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets, with a NAT gateway or VPC endpoints, for the preview tasks."
}

variable "hosted_zone_id" {
  type        = string
  description = "Route53 hosted zone of the preview domain."
}

variable "build_repository_url" {
  type        = string
  description = "HTTPS clone URL of the repository CodeBuild builds."
}

variable "preview_domain" {
  type        = string
  description = "Domain previews are served under, e.g. preview.example.com."
}
