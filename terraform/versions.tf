terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.27 added aws_lambda_function.logging_config. Below 6: the Chalice package
      # (./chalice) uses aws_api_gateway_deployment.stage_name, which provider 6 removed.
      version = ">= 5.27, < 6.0"
    }
  }
}
