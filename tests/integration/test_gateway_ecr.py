"""The ECR gateway against moto: images found by tag, tags added and removed without Docker."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.ecr import Image, Images
from chalicelib.aws.errors import AwsError, NotFound
from chalicelib.domain.names import BaseNames
from chalicelib.local.bootstrap import BASE_TAGS
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, REGION
from tests.integration.images import MEDIA_TYPE, push_test_image

SHA_TAG = "sha-0123456789abcdef0123456789abcdef01234567"
BRANCH_TAG = "branch-feature-a"


@pytest.fixture
def ecr(clients: ClientFactory) -> Any:
    return clients.client("ecr")


@pytest.fixture
def repository(ecr: Any) -> str:
    """Only the ECR repository of the base infrastructure, made as bootstrap makes it: the
    tests here need no VPC, load balancer, queue or table (a whole ``infra`` costs about
    half a CPU-second a test)."""
    name = BaseNames(APP).ecr_repository
    tags = {**BASE_TAGS, "branchenv:app": APP}
    ecr.create_repository(
        repositoryName=name,
        imageScanningConfiguration={"scanOnPush": True},
        imageTagMutability="MUTABLE",
        tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return name


@pytest.fixture
def images(repository: str, clients: ClientFactory) -> Images:
    return Images(clients.client("ecr"), repository)


def _tags_of_digest(ecr: Any, repository: str, digest: str) -> list[str]:
    answer = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    return sorted(answer["imageDetails"][0].get("imageTags", []))


def test_repository_uri_is_the_one_bootstrap_made(
    infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    images = Images(clients.client("ecr"), infra.ecr_repository_name)

    assert images.repository_uri() == infra.ecr_repository_url


def test_repository_uri_of_a_missing_repository_is_not_found(clients: ClientFactory) -> None:
    images = Images(clients.client("ecr"), "no-such-repository")

    with pytest.raises(NotFound) as exc:
        images.repository_uri()

    assert exc.value.code == "RepositoryNotFoundException"


def test_find_images_returns_only_the_tags_present(
    images: Images, repository: str, ecr: Any
) -> None:
    digest = push_test_image(ecr, repository, SHA_TAG)

    found = images.find_images([SHA_TAG, "sha-missing"])

    assert list(found) == [SHA_TAG]
    assert found[SHA_TAG].digest == digest
    assert found[SHA_TAG].media_type == MEDIA_TYPE


def test_find_images_of_no_tags_is_empty(images: Images) -> None:
    assert images.find_images([]) == {}


def test_put_tag_points_a_second_tag_at_the_same_image(
    images: Images, repository: str, ecr: Any
) -> None:
    digest = push_test_image(ecr, repository, SHA_TAG)
    image = images.find_images([SHA_TAG])[SHA_TAG]

    images.put_tag(image, BRANCH_TAG)

    assert _tags_of_digest(ecr, repository, digest) == [BRANCH_TAG, SHA_TAG]


def test_put_tag_already_there_is_not_an_error(images: Images, repository: str, ecr: Any) -> None:
    digest = push_test_image(ecr, repository, SHA_TAG)
    image = images.find_images([SHA_TAG])[SHA_TAG]
    images.put_tag(image, BRANCH_TAG)

    images.put_tag(image, BRANCH_TAG)

    assert _tags_of_digest(ecr, repository, digest) == [BRANCH_TAG, SHA_TAG]


def test_put_tag_moves_a_tag_from_an_older_image(images: Images, repository: str, ecr: Any) -> None:
    push_test_image(ecr, repository, BRANCH_TAG, seed="old")
    new_digest = push_test_image(ecr, repository, SHA_TAG)

    images.put_tag(images.find_images([SHA_TAG])[SHA_TAG], BRANCH_TAG)

    assert images.find_images([BRANCH_TAG])[BRANCH_TAG].digest == new_digest


def test_put_tag_into_a_missing_repository_is_not_found() -> None:
    # moto's PutImage raises a bare Python exception for an unknown repository; ECR answers
    # RepositoryNotFoundException, played here by the Stubber.
    client = boto3.client("ecr", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "put_image", service_error_code="RepositoryNotFoundException", http_status_code=400
    )
    stubber.activate()
    image = Image(SHA_TAG, "sha256:" + "0" * 64, '{"schemaVersion": 2}', MEDIA_TYPE)

    with pytest.raises(NotFound) as exc:
        Images(client, "no-such-repository").put_tag(image, BRANCH_TAG)

    assert exc.value.code == "RepositoryNotFoundException"


def test_remove_tag_keeps_the_image_under_its_other_tags(
    images: Images, repository: str, ecr: Any
) -> None:
    digest = push_test_image(ecr, repository, SHA_TAG)
    images.put_tag(images.find_images([SHA_TAG])[SHA_TAG], BRANCH_TAG)

    images.remove_tag(BRANCH_TAG)

    assert _tags_of_digest(ecr, repository, digest) == [SHA_TAG]


def test_remove_tag_that_is_not_there_is_not_an_error(images: Images) -> None:
    images.remove_tag(BRANCH_TAG)

    assert images.list_tags() == []


def test_remove_tag_failure_other_than_not_found_is_an_aws_error() -> None:
    # moto cannot be made to fail one image of a batch; ECR reports it in `failures`.
    client = boto3.client("ecr", region_name=REGION)
    stubber = Stubber(client)
    failure = {
        "imageId": {"imageTag": BRANCH_TAG},
        "failureCode": "InvalidImageTag",
        "failureReason": "Invalid image tag",
    }
    stubber.add_response("batch_delete_image", {"failures": [failure]})
    stubber.activate()

    with pytest.raises(AwsError) as exc:
        Images(client, "demo").remove_tag(BRANCH_TAG)

    assert exc.value.code == "InvalidImageTag"


def test_list_tags_filters_by_prefix(images: Images, repository: str, ecr: Any) -> None:
    push_test_image(ecr, repository, SHA_TAG)
    push_test_image(ecr, repository, BRANCH_TAG)
    push_test_image(ecr, repository, "branch-feature-b")

    assert images.list_tags("branch-") == [BRANCH_TAG, "branch-feature-b"]
    assert len(images.list_tags()) == 3
