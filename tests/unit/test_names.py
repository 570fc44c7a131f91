"""Property tests: every name derived from a branch is valid for its AWS service and
different branches never share a name."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.names import names_for, slugify

DOMAIN = "preview.example.com"
LONG_DOMAIN = ("a" * 60 + ".") * 3 + "example.com"  # 194 characters: the slug gets shorter
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


@given(any_branch)
@settings(max_examples=300)
def test_every_derived_name_is_valid(branch: str) -> None:
    for domain in (DOMAIN, LONG_DOMAIN):
        names = names_for("demo", "octo/app", branch, domain)
        assert LABEL.match(names.slug) and len(names.slug) <= 63
        assert len(names.host) <= 253
        assert len(names.target_group) <= 32 and TARGET_GROUP.match(names.target_group)
        assert not names.target_group.startswith("internal-")
        assert SERVICE.match(names.service(12))
        assert ECR_TAG.match(names.branch_tag)
        assert len(names.queue_group_id) <= 128
        assert len(names.task_family) <= 255
        assert all(len(v) <= 256 for v in names.tags().values())


@given(any_branch, any_branch)
@settings(max_examples=300)
def test_different_branches_never_share_a_slug(first: str, second: str) -> None:
    if first != second:
        assert slugify(first, DOMAIN) != slugify(second, DOMAIN)
        a = names_for("demo", "octo/app", first, DOMAIN)
        b = names_for("demo", "octo/app", second, DOMAIN)
        assert a.target_group != b.target_group
        assert a.service(1) != b.service(1)
        assert a.queue_group_id != b.queue_group_id


@given(st.lists(any_branch, min_size=2, max_size=40, unique=True))
def test_a_set_of_branches_gets_as_many_slugs(branches: list[str]) -> None:
    assert len({slugify(b, DOMAIN) for b in branches}) == len(branches)
