"""Property tests: every name derived from a branch is valid for its AWS service and
different branches never share a name."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.names import (
    HASH_LENGTH,
    MAX_HOST_HEADER,
    MAX_PREVIEW_DOMAIN,
    MIN_SLUG_LENGTH,
    names_for,
    short_hash,
    slugify,
)

DOMAIN = "preview.example.com"
# The longest domain settings accept (111): the slug budget shrinks to 16.
LONG_DOMAIN = "a" * 63 + "." + "b" * 43 + ".com"
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
TARGET_GROUP = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
SERVICE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ECR_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
FORBIDDEN = set(" ~^:?*[\\\x7f")


def is_git_branch_name(name: str) -> bool:
    """What `git check-ref-format --branch` accepts (the rules that matter for names)."""
    if not name or name.startswith("-") or name == "@" or "@{" in name or ".." in name:
        return False
    if name.endswith(("/", ".", ".lock")) or "//" in name or name.startswith("/"):
        return False
    if any(c in FORBIDDEN or ord(c) < 32 for c in name):
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))


branch_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
    min_size=1,
    max_size=250,
).filter(is_git_branch_name)
ascii_branches = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./",
    min_size=1,
    max_size=250,
).filter(is_git_branch_name)
any_branch = st.one_of(branch_names, ascii_branches)


def domain_of_length(length: int) -> str:
    """A valid preview domain of exactly ``length`` characters (5 to 131)."""
    prefix = length - len(".com")
    if prefix <= 63:
        return "d" * prefix + ".com"
    first = min(63, prefix - 2)
    return "d" * first + "." + "m" * (prefix - first - 1) + ".com"


dns_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?", fullmatch=True)
domains = st.one_of(
    st.just(DOMAIN),
    st.just(LONG_DOMAIN),
    st.integers(min_value=5, max_value=MAX_PREVIEW_DOMAIN).map(domain_of_length),
    st.lists(dns_labels, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "dev"])),
)


def test_a_branch_that_is_already_a_label_keeps_its_name() -> None:
    assert slugify("feature-login", DOMAIN) == "feature-login"


def test_case_slash_and_underscore_make_three_different_slugs() -> None:
    slugs = {slugify(b, DOMAIN) for b in ("Feature/A", "feature-a", "feature_a")}
    assert len(slugs) == 3
    assert "feature-a" in slugs


def test_a_hashed_looking_branch_is_hashed_again_so_it_cannot_collide() -> None:
    lossy = slugify("Feature/A", DOMAIN)
    assert slugify(lossy, DOMAIN) != lossy


def test_a_250_character_branch_fits_a_dns_label() -> None:
    slug = slugify("x" * 250, DOMAIN)
    assert len(slug) == 63
    assert LABEL.match(slug)


def test_unicode_branch_keeps_a_readable_prefix() -> None:
    slug = slugify("fix/café-ünïcode", DOMAIN)
    assert slug.startswith("fix-cafe-unicode-")


def test_the_longest_allowed_domain_still_fits_an_alb_host_header() -> None:
    names = names_for("demo", "octo/app", "feature/" + "x" * 200, LONG_DOMAIN)
    assert len(LONG_DOMAIN) == MAX_PREVIEW_DOMAIN
    assert len(names.host) <= MAX_HOST_HEADER
    assert len(names.slug) == MIN_SLUG_LENGTH


def test_a_label_branch_too_long_for_the_domain_budget_is_hashed() -> None:
    branch = "feature-login-button"  # a valid label of 20: fits 63, not 16
    slug = slugify(branch, LONG_DOMAIN)
    assert slug == f"feature-{short_hash(branch)}"
    assert len(f"{slug}.{LONG_DOMAIN}") <= MAX_HOST_HEADER


def test_a_label_branch_within_the_budget_keeps_its_name_under_a_long_domain() -> None:
    assert slugify("fix-login-button", LONG_DOMAIN) == "fix-login-button"


def test_a_domain_that_leaves_no_room_for_a_slug_is_refused() -> None:
    with pytest.raises(ValueError, match="use at most 111"):
        slugify("main", domain_of_length(MAX_PREVIEW_DOMAIN + 1))


def slug_before_the_host_header_budget(branch: str, domain: str) -> str:
    """The slug rule as it was when only DNS's 253 limited ``<slug>.<domain>``."""
    limit = min(63, 253 - len(domain) - 1)
    if len(branch) <= limit and LABEL.match(branch) and not re.search(r"-[0-9a-f]{8}$", branch):
        return branch
    ascii_text = unicodedata.normalize("NFKD", branch).encode("ascii", "ignore").decode()
    readable = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    readable = readable[: limit - HASH_LENGTH - 1].rstrip("-") or "b"
    return f"{readable}-{short_hash(branch)}"


@given(any_branch, domains)
@settings(max_examples=300)
def test_an_environment_that_worked_on_aws_keeps_its_slug(branch: str, domain: str) -> None:
    """Only slugs whose host never fitted a host-header rule (CreateRule failed) change."""
    before = slug_before_the_host_header_budget(branch, domain)
    if len(f"{before}.{domain}") <= MAX_HOST_HEADER:
        assert slugify(branch, domain) == before


@given(any_branch, domains)
@settings(max_examples=300)
def test_every_derived_name_is_valid(branch: str, domain: str) -> None:
    for each in (domain, LONG_DOMAIN):
        names = names_for("demo", "octo/app", branch, each)
        assert LABEL.match(names.slug) and len(names.slug) <= 63
        assert len(names.host) <= MAX_HOST_HEADER
        assert len(names.target_group) <= 32 and TARGET_GROUP.match(names.target_group)
        assert not names.target_group.startswith("internal-")
        assert SERVICE.match(names.service(12))
        assert ECR_TAG.match(names.branch_tag)
        assert len(names.queue_group_id) <= 128
        assert len(names.task_family) <= 255
        assert all(len(v) <= 256 for v in names.tags().values())


@given(any_branch, any_branch, domains)
@settings(max_examples=300)
def test_different_branches_never_share_a_slug(first: str, second: str, domain: str) -> None:
    if first != second:
        for each in (domain, LONG_DOMAIN):
            assert slugify(first, each) != slugify(second, each)
            a = names_for("demo", "octo/app", first, each)
            b = names_for("demo", "octo/app", second, each)
            assert a.target_group != b.target_group
            assert a.service(1) != b.service(1)
            assert a.queue_group_id != b.queue_group_id


@given(st.lists(any_branch, min_size=2, max_size=40, unique=True))
def test_a_set_of_branches_gets_as_many_slugs(branches: list[str]) -> None:
    for domain in (DOMAIN, LONG_DOMAIN):
        assert len({slugify(b, domain) for b in branches}) == len(branches)
