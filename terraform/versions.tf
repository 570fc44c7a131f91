terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.27 added aws_lambda_function.logging_config. Below 6: tests/terraform runs 5.x
      # for real, and provider 6 deprecates data.aws_region's name, which ./chalice uses.
      version = ">= 5.27, < 6.0"
    }
  }
}
