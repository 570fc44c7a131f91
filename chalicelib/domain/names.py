"""Branch name → slug and every AWS name derived from it; the base infrastructure's names.

This is the only place that invents a name. Every name is a pure function of the
application, the repository, the exact branch name and the preview domain, so a
converge that was interrupted finds the same resources again by name.

Rules (property-tested in tests/unit/test_names.py):
- the slug is a DNS label (a-z, 0-9, '-', at most 63, no '-' at either end) and
  ``<slug>.<domain>`` is at most 128 characters, the longest value an ALB host-header
  condition takes (so also a valid DNS name, which may have 253);
- a branch that is already such a label (and does not look like a hashed slug) is its
  own slug; any other branch gets a readable prefix plus ``-`` and 8 hex characters of
  the SHA-256 of the exact branch name, so two different branches never share a slug;
- target group name ≤ 32, service name ≤ 255, ECR tag ≤ 128 in ``[A-Za-z0-9_.-]``,
  SQS MessageGroupId ≤ 128, all derived from the slug.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from chalicelib.domain.environments import Environment

HASH_LENGTH = 8
MAX_LABEL = 63
# "The maximum length of each string is 128 characters": HostHeaderConditionConfig in the
# ELB API reference (docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/
# API_HostHeaderConditionConfig.html). Our host is the rule's value and the Route53 name.
MAX_HOST_HEADER = 128
# The shortest slug a preview domain must leave room for: 16 keeps a hashed slug readable
# (7 characters of the branch, '-', 8 hex: "feature-1a2b3c4d") and lets a short branch that
# is already a label ("fix-login-button") keep its own name.
MIN_SLUG_LENGTH = 16
MAX_PREVIEW_DOMAIN = MAX_HOST_HEADER - 1 - MIN_SLUG_LENGTH  # 111
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_HASHED_SUFFIX = re.compile(r"-[0-9a-f]{8}$")
_NOT_LABEL_CHARS = re.compile(r"[^a-z0-9]+")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    """The first ``length`` hex digits of SHA-256 of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def max_slug_length(domain: str) -> int:
    """The longest slug for which ``<slug>.<domain>`` is a DNS label under ``domain`` and
    fits an ALB host-header condition; ValueError for a domain that leaves less than
    MIN_SLUG_LENGTH (Settings refuse such a BRANCHENV_PREVIEW_DOMAIN first)."""
    if len(domain) > MAX_PREVIEW_DOMAIN:
        raise ValueError(
            f"preview domain of {len(domain)} characters leaves less than {MIN_SLUG_LENGTH} "
            f"for a slug in a {MAX_HOST_HEADER}-character host header; use at most "
            f"{MAX_PREVIEW_DOMAIN}"
        )
    return min(MAX_LABEL, MAX_HOST_HEADER - len(domain) - 1)


def slugify(branch: str, domain: str) -> str:
    """The DNS label for ``branch`` under ``domain``; distinct branches get distinct slugs.
    A branch that is a label but too long for the budget is hashed like any other."""
    limit = max_slug_length(domain)
    if len(branch) <= limit and _LABEL.match(branch) and not _HASHED_SUFFIX.search(branch):
        return branch
    ascii_text = unicodedata.normalize("NFKD", branch).encode("ascii", "ignore").decode()
    readable = _NOT_LABEL_CHARS.sub("-", ascii_text.lower()).strip("-")
    readable = readable[: limit - HASH_LENGTH - 1].rstrip("-") or "b"
    return f"{readable}-{short_hash(branch)}"


@dataclass(frozen=True)
class EnvironmentNames:
    """Every name used for one environment (one branch of one repository)."""

    app: str
    repository: str
    branch: str
    domain: str
    slug: str

    @property
    def host(self) -> str:
        """``<slug>.<domain>``: the host-header rule and the Route53 record (≤ 128)."""
        return f"{self.slug}.{self.domain}"

    @property
    def target_group(self) -> str:
        """At most 32 characters; prefixed so it never starts with ``internal-``."""
        prefix = self.slug[:20].rstrip("-")
        return f"be-{prefix}-{short_hash(self.app + '/' + self.slug)}"

    def service(self, generation: int) -> str:
        """ECS service name; the generation changes when a re-created branch must not wait
        for its previous service to finish DRAINING."""
        return f"{self.app}-{self.slug}_{generation}"

    @property
    def service_prefix(self) -> str:
        return f"{self.app}-{self.slug}_"

    @property
    def task_family(self) -> str:
        return f"{self.app}-{self.slug}"

    @property
    def container(self) -> str:
        return "app"

    @property
    def log_group(self) -> str:
        """The installation's one log group for preview tasks (terraform/ creates it with a
        retention); each environment's streams start with its slug."""
        return f"/branchenv/{self.app}/previews"

    @property
    def branch_tag(self) -> str:
        """The ECR tag that points at the image this branch runs (≤ 128, [a-z0-9-])."""
        return f"branch-{self.slug}"

    @property
    def cache_tag(self) -> str:
        """The ECR tag of this branch's BuildKit layer cache (terraform/buildspec.yml
        derives it from the branch tag); never deployed, removed with the branch."""
        return f"cache-{self.slug}"

    @property
    def queue_group_id(self) -> str:
        """SQS FIFO MessageGroupId (at most 128 characters): one group per environment, so
        its webhooks and its AWS events are handled in order; the slug alone, so an AWS
        event handler knows the group without reading the record."""
        return self.slug

    @property
    def dns_owner(self) -> str:
        """Value of the TXT record kept beside the alias at ``host`` to say the alias is
        ours: Route53 records carry no tags (the external-dns "registry" idea)."""
        return f"heritage=branchenv,app={self.app},env={self.slug}"

    def tags(self) -> dict[str, str]:
        """The tags every AWS resource made for this environment carries."""
        return {
            "branchenv:managed": "true",
            "branchenv:app": self.app,
            "branchenv:env": self.slug,
            "branchenv:branch": _tag_value(self.branch),
        }


def _tag_value(text: str) -> str:
    """AWS tag values allow at most 256 characters of letters, digits, spaces and _.:/=+-@."""
    cleaned = re.sub(r"[^\w .:/=+\-@]", "_", text)
    return cleaned[:256]


def names_for(app: str, repository: str, branch: str, domain: str) -> EnvironmentNames:
    """All names for ``branch`` of ``repository`` in the installation ``app``: computed
    once, when the environment's record is made (its slug is the record's key)."""
    return EnvironmentNames(
        app=app, repository=repository, branch=branch, domain=domain, slug=slugify(branch, domain)
    )


def names_of(env: Environment, app: str, domain: str) -> EnvironmentNames:
    """The names of an environment that has a record, read from it: the slug is never
    computed again (a tombstone's branch is its slug, which slugify would hash again)."""
    return EnvironmentNames(
        app=app, repository=env.repository, branch=env.branch, domain=domain, slug=env.slug
    )


def is_sha(text: str) -> bool:
    """A full 40-hex git commit id."""
    return bool(re.fullmatch(r"[0-9a-f]{40}", text))


@dataclass(frozen=True)
class BaseNames:
    """Names of the shared resources for installation ``app``; terraform/ uses the same."""

    app: str

    @property
    def cluster(self) -> str:
        return self.app

    @property
    def ecr_repository(self) -> str:
        return self.app

    @property
    def queue(self) -> str:
        return f"{self.app}-work.fifo"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.app}-work-dlq.fifo"

    @property
    def table(self) -> str:
        return f"{self.app}-environments"

    @property
    def codebuild_project(self) -> str:
        return f"{self.app}-build"

    @property
    def event_bus(self) -> str:
        return self.app

    @property
    def load_balancer(self) -> str:
        return f"{self.app}-previews"

    @property
    def execution_role(self) -> str:
        return f"{self.app}-task-execution"

    @property
    def task_role(self) -> str:
        return f"{self.app}-task"

    @property
    def codebuild_role(self) -> str:
        return f"{self.app}-codebuild"
