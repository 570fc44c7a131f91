# A complete branchenv installation in an existing VPC and Route53 zone.
#
#   cd terraform/examples/complete
#   terraform init && terraform apply -var-file=example.tfvars
#
# The module's ./chalice folder must hold the Chalice package first: `branchenv deploy`
# makes it (and runs terraform in terraform/ itself); see the README, "Deploy to AWS".

provider "aws" {
  region = var.region

  default_tags {
    tags = { "branchenv:installation" = var.app_name }
  }
}

module "branchenv" {
  source = "../../"

  app_name           = var.app_name
  vpc_id             = var.vpc_id
  public_subnet_ids  = var.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  hosted_zone_id     = var.hosted_zone_id
  preview_domain     = var.preview_domain

  container_port       = 3000
  health_check_path    = "/healthz"
  image_source         = "build"
  build_repository_url = var.build_repository_url
  slack_channel        = "#previews"
  allowed_repositories = ["example-org/shop"]

  tags = { team = "shop" }
}
