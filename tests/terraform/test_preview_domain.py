"""Terraform and the settings agree on how long a preview domain may be: the one that
leaves a slug of at least 16 characters inside ELB's 128-character host-header value."""

from __future__ import annotations

from pathlib import Path

from chalicelib.domain.names import MAX_PREVIEW_DOMAIN

VARIABLES = Path(__file__).parents[2] / "terraform" / "variables.tf"


def test_terraform_refuses_the_preview_domains_the_settings_refuse() -> None:
    text = VARIABLES.read_text()

    assert f"length(var.preview_domain) <= {MAX_PREVIEW_DOMAIN}" in text
    assert f"at most {MAX_PREVIEW_DOMAIN} characters" in text
