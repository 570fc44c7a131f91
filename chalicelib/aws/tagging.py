"""The Resource Groups Tagging API (the only caller): what carries branchenv's tags.

One paged ``GetResources`` with the installation's tag filters answers "which target
groups and services are this installation's" with their tags, whatever else the region
holds: the reaper's sweep costs what branchenv made, not what the account has. This module
only reads.

GetResources returns at most 100 resources a page and counts tags against ``TagsPerPage``
(at least 100, at most 500): a resource with our four or five tags fits 100 to a page at
500 (Resource Groups Tagging API reference, GetResources).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.aws.errors import call

MANAGED_TAG = "branchenv:managed"
APP_TAG = "branchenv:app"
RESOURCES_PER_PAGE = 100
TAGS_PER_PAGE = 500
TARGET_GROUP = "elasticloadbalancing:targetgroup"
ECS_SERVICE = "ecs:service"


@dataclass(frozen=True)
class Tagged:
    """One tagged resource: its ARN, its type (``service:resource``) and its tags."""

    arn: str
    resource_type: str
    tags: dict[str, str]


class TaggedResources:
    """Resources tagged as one installation's, by resource type."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def managed(self, app: str, resource_types: Sequence[str]) -> list[Tagged]:
        """Every resource of ``resource_types`` tagged ``branchenv:managed=true`` and
        ``branchenv:app=<app>``, following every page."""
        return list(self._pages(app, resource_types))

    def _pages(self, app: str, resource_types: Sequence[str]) -> Iterator[Tagged]:
        kwargs: dict[str, Any] = {
            "TagFilters": [
                {"Key": MANAGED_TAG, "Values": ["true"]},
                {"Key": APP_TAG, "Values": [app]},
            ],
            "ResourceTypeFilters": list(resource_types),
            "ResourcesPerPage": RESOURCES_PER_PAGE,
            "TagsPerPage": TAGS_PER_PAGE,
        }
        while True:
            page = call("GetResources", self._client.get_resources, **kwargs)
            for item in page.get("ResourceTagMappingList", []):
                arn = str(item["ResourceARN"])
                tags = {t["Key"]: t.get("Value", "") for t in item.get("Tags", [])}
                yield Tagged(arn, _resource_type(arn), tags)
            token = page.get("PaginationToken")
            if not token:
                return
            kwargs["PaginationToken"] = token


def _resource_type(arn: str) -> str:
    """``service:resource`` of an ARN, as GetResources' ResourceTypeFilters name it."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return ""
    resource = parts[5].split("/", 1)[0]
    return f"{parts[2]}:{resource}"
