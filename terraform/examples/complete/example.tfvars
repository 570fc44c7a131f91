app_name             = "shop"
vpc_id               = "vpc-0123456789abcdef0"
public_subnet_ids    = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
private_subnet_ids   = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]
hosted_zone_id       = "Z0123456789ABCDEFGHIJ"
preview_domain       = "preview.example.com"
build_repository_url = "https://github.com/example-org/shop.git"
