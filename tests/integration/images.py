"""Pushes a small but valid image manifest into (moto's) ECR, so tests need no Docker."""

from __future__ import annotations

import hashlib
import json
from typing import Any

MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def test_manifest(seed: str) -> str:
    """A schemaVersion 2 Docker manifest whose digests are derived from ``seed``."""

    def digest(text: str) -> str:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1470,
            "digest": digest(f"config-{seed}"),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 3208942,
                "digest": digest(f"layer-{seed}"),
            }
        ],
    }
    return json.dumps(manifest, indent=3)


test_manifest.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def push_test_image(client: Any, repository: str, tag: str, *, seed: str | None = None) -> str:
    """Put an image tagged ``tag`` into ``repository``; return its digest. Images pushed
    with the same ``seed`` (default: the tag) are the same image."""
    answer = client.put_image(
        repositoryName=repository,
        imageManifest=test_manifest(seed or tag),
        imageManifestMediaType=MEDIA_TYPE,
        imageTag=tag,
    )
    return str(answer["image"]["imageId"]["imageDigest"])
