"""The image tags: the environment's tags in the ECR repository, and the build making them.

Found by tag (``<sha>``, ``branch-<slug>``, in build mode ``cache-<slug>``: one
BatchGetImage); the record keeps the commit whose images converge verified
(``image_sha``) and the CodeBuild build it waits for (``build_id``). In ``build`` mode the
image comes from CodeBuild (StartBuild, idempotent per push), in ``retag`` mode from
another tag of the same image; the branch tag then follows the deployed commit. A
teardown untags in one call; ECR deletes an image once its last tag goes.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.aws.codebuild import Build
from chalicelib.aws.ecr import Image
from chalicelib.domain.environments import Environment
from chalicelib.domain.names import short_hash
from chalicelib.domain.resources import ResourceKind
from chalicelib.engine.converge.kinds.base import Context, KindSpec
from chalicelib.engine.converge.model import (
    RemoveImageTags,
    RetagImage,
    RetryLater,
    StartBuild,
    StopBuild,
    TagBranchImage,
    Target,
)
from chalicelib.engine.converge.progress import Progress


def run_stop_build(ctx: Context, step: StopBuild, progress: Progress, target: Target) -> None:
    assert ctx.builds is not None
    ctx.builds.stop(step.build_id)


def run_start_build(ctx: Context, step: StartBuild, progress: Progress, target: Target) -> None:
    if ctx.builds is None:
        raise RetryLater("image source is 'build' but BRANCHENV_CODEBUILD_PROJECT is not set")
    names = target.names
    build = ctx.builds.start(
        sha=step.sha,
        repository_uri=target.repository_uri,
        sha_tag=step.sha,
        branch_tag=names.branch_tag,
        slug=names.slug,
        idempotency_token=build_token(progress.env, step.sha),
    )
    # Written with the run's status at its end (StartBuild is a plan's last step): a
    # run cut off before that write starts the same build again within CodeBuild's
    # five minutes of idempotency, and gets this build back.
    progress.env = replace(progress.env, build_id=build.id, log_url=build.log_url)


def build_token(env: Environment, sha: str) -> str:
    """StartBuild's idempotency token: one per push of ``sha`` to the branch (a redelivery
    or a retry of the same push repeats it; pushing the sha again later does not)."""
    return short_hash(f"{env.slug}:{sha}:{env.triggered_at}", 32)


def run_retag(ctx: Context, step: RetagImage, progress: Progress, target: Target) -> None:
    source = ctx.images.find_images([step.source_tag]).get(step.source_tag)
    if source is None:
        raise RetryLater(f"image {step.source_tag} disappeared from ECR")
    ctx.images.put_tag(source, step.sha)


def run_tag_branch(ctx: Context, step: TagBranchImage, progress: Progress, target: Target) -> None:
    sha = progress.env.desired_sha
    assert sha is not None
    image = progress.sha_image or ctx.images.find_images([sha]).get(sha)
    if image is None:
        raise RetryLater(f"image {sha[:12]} disappeared from ECR")
    ctx.images.put_tag(image, step.tag)


def run_remove_tags(
    ctx: Context, step: RemoveImageTags, progress: Progress, target: Target
) -> None:
    ctx.images.remove_tags(step.tags)


def _remove_leftover(tag: str) -> RemoveImageTags:
    return RemoveImageTags((tag,))


RECORDED_IMAGE = "(verified by converge; see the record)"


def find(ctx: Context, env: Environment, target: Target) -> tuple[dict[str, Image], Build | None]:
    """The images of :func:`wanted_tags` (one BatchGetImage), and the build converge waits
    for when the commit's image is missing (:func:`awaits_build`)."""
    found = ctx.images.find_images(wanted_tags(env, target))
    build = None
    if ctx.builds is not None and env.build_id and awaits_build(env, target, found):
        build = ctx.builds.get(env.build_id)
    return found, build


def wanted_tags(env: Environment, target: Target) -> list[str]:
    """The tags to look up: the desired commit's (while the branch is present), the
    branch's, and the retag source's."""
    names = target.names
    if env.desired != "present" or not env.desired_sha:
        return [names.branch_tag]
    source = [target.source_tag] if target.source_tag else []
    return [env.desired_sha, names.branch_tag, *source]


def awaits_build(env: Environment, target: Target, found: dict[str, Image]) -> bool:
    """Whether converge waits for the build the record names: a present branch's commit
    has no image in ``found`` yet, in ``build`` mode."""
    sha = env.desired_sha if env.desired == "present" else None
    return bool(sha and sha not in found and env.build_id and target.image_source == "build")


def from_record(sha: str, branch_tag: str) -> dict[str, Image]:
    """The commit's and the branch's images as the record vouches for them: verified
    (or built by CodeBuild, whose buildspec pushes both tags) for commit ``sha``."""
    recorded = Image(sha, RECORDED_IMAGE, "", "")
    return {sha: recorded, branch_tag: recorded}


KIND = KindSpec(
    kind=ResourceKind.IMAGE_TAG,
    steps=(StopBuild, StartBuild, RetagImage, TagBranchImage, RemoveImageTags),
    leftover=_remove_leftover,
)
