# --- ECR: one repository for every branch's images --------------------------------------
#
# Tags: the commit sha (one image per pushed commit) and branch-<slug> (the image a branch
# runs now; chalicelib/domain/names.py branch_tag). Lifecycle: untagged images go after a day,
# branch-* images stay while their branch lives (the worker deletes the tag with the
# environment), and an image only a sha points at goes after image_retention_days.
# cache-<slug> tags are BuildKit's registry caches (buildspec.yml): kept like branch-* tags,
# never deployed.

resource "aws_ecr_repository" "previews" {
  #checkov:skip=CKV_AWS_51:Tags must be mutable: branch-<slug> moves to each new commit of the branch.
  #checkov:skip=CKV_AWS_136:Images are encrypted at rest with AES-256 (ECR's default); a customer-managed KMS key adds cost and key administration for short-lived test images.
  name                 = local.names.ecr_repository
  image_tag_mutability = "MUTABLE"
  force_delete         = true # `branchenv destroy-all` removes the repository with its images
  tags                 = local.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "previews" {
  repository = aws_ecr_repository.previews.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after a day"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 1
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the images live branches point at, and their build caches"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["branch-", "cache-"]
          countType     = "imageCountMoreThan"
          countNumber   = 10000
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 3
        description  = "Expire old sha-tagged images"
        selection = {
          tagStatus   = "any"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.image_retention_days
        }
        action = { type = "expire" }
      },
    ]
  })
}
