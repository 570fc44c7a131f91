"""Amazon ECR (the only caller): find images by tag and move tags without Docker.

A tag is added by PutImage with the manifest of an image already in the repository (a
"retag": no layers move), and removed by BatchDeleteImage by tag, which deletes the image
only when that was its last tag. This module must never delete an image by digest: other
tags (another branch, a sha) may still point at it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.errors import AwsError, translate

REPOSITORY_NOT_FOUND = ("RepositoryNotFoundException",)
MAX_IMAGE_IDS = 100


@dataclass(frozen=True)
class Image:
    tag: str
    digest: str
    manifest: str
    media_type: str


class Images:
    """Tags of images in one ECR repository."""

    def __init__(self, client: Any, repository: str) -> None:
        self._client = client
        self._repository = repository
        self._uri: str | None = None

    def repository_uri(self) -> str:
        """``<registry>.dkr.ecr.<region>.amazonaws.com/<repository>`` (read once)."""
        if self._uri is None:
            answer = self._call(
                "DescribeRepositories",
                self._client.describe_repositories,
                repositoryNames=[self._repository],
            )
            self._uri = str(answer["repositories"][0]["repositoryUri"])
        return self._uri

    def find_images(self, tags: Sequence[str]) -> dict[str, Image]:
        """The images behind ``tags`` (at most 100), by tag; missing tags are left out."""
        wanted = list(tags[:MAX_IMAGE_IDS])
        if not wanted:
            return {}
        images, failed = self._batch_get_image(wanted)
        by_tag = {raw["imageId"].get("imageTag"): raw for raw in images}
        for tag in wanted:
            if tag not in by_tag and tag not in failed:
                # moto gap: BatchGetImage labels each result with one of the image's own
                # tags (another branch's, say), where AWS echoes the tag asked for; asked
                # alone, the one result is that tag's image whatever its label.
                alone, _ = self._batch_get_image([tag])
                if alone:
                    by_tag[tag] = alone[0]
        return {
            tag: Image(
                tag=tag,
                digest=by_tag[tag]["imageId"]["imageDigest"],
                manifest=by_tag[tag]["imageManifest"],
                media_type=by_tag[tag].get("imageManifestMediaType", ""),
            )
            for tag in wanted
            if tag in by_tag
        }

    def _batch_get_image(self, tags: Sequence[str]) -> tuple[list[dict[str, Any]], set[str]]:
        """BatchGetImage's images and the tags it reported as failures."""
        answer = self._call(
            "BatchGetImage",
            self._client.batch_get_image,
            repositoryName=self._repository,
            imageIds=[{"imageTag": tag} for tag in tags],
        )
        failed = {f.get("imageId", {}).get("imageTag") for f in answer.get("failures", [])}
        return list(answer.get("images", [])), failed

    def put_tag(self, image: Image, tag: str) -> None:
        """Point ``tag`` at ``image``; already pointing there is fine."""
        kwargs: dict[str, str] = {
            "repositoryName": self._repository,
            "imageManifest": image.manifest,
            "imageTag": tag,
        }
        if image.media_type:
            kwargs["imageManifestMediaType"] = image.media_type
        try:
            self._client.put_image(**kwargs)
        except ClientError as exc:
            if _code(exc) == "ImageAlreadyExistsException":
                return
            raise translate(exc, "PutImage", not_found=REPOSITORY_NOT_FOUND) from exc
        except BotoCoreError as exc:
            raise translate(exc, "PutImage") from exc

    def remove_tag(self, tag: str) -> None:
        """Remove ``tag`` (the image itself goes only if this was its last tag); gone is fine."""
        self.remove_tags((tag,))

    def remove_tags(self, tags: Sequence[str]) -> None:
        """Remove ``tags`` in one call (BatchDeleteImage takes up to 100 image ids); an
        image goes only with its last tag, and a tag gone already is fine."""
        if not tags:
            return
        answer = self._call(
            "BatchDeleteImage",
            self._client.batch_delete_image,
            repositoryName=self._repository,
            imageIds=[{"imageTag": tag} for tag in tags],
        )
        for failure in answer.get("failures", []):
            code = str(failure.get("failureCode", ""))
            if code != "ImageNotFound":
                tag = failure.get("imageId", {}).get("imageTag", "?")
                reason = failure.get("failureReason", "")
                message = f"BatchDeleteImage failed for tag {tag}: {code}: {reason}"
                raise AwsError(message, code=code, operation="BatchDeleteImage")

    def list_tags(self, prefix: str = "") -> list[str]:
        """Every tag in the repository that starts with ``prefix``, sorted."""
        return sorted(tag for tag in self._all_tags() if tag.startswith(prefix))

    def _all_tags(self) -> Iterator[str]:
        kwargs: dict[str, Any] = {
            "repositoryName": self._repository,
            "filter": {"tagStatus": "TAGGED"},
            "maxResults": 1000,
        }
        while True:
            page = self._call("ListImages", self._client.list_images, **kwargs)
            for image_id in page.get("imageIds", []):
                if image_id.get("imageTag"):
                    yield image_id["imageTag"]
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    @staticmethod
    def _call(operation: str, method: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, operation, not_found=REPOSITORY_NOT_FOUND) from exc
        return answer


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
