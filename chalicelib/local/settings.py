"""Settings of the local stack: the preview URL carries the local load balancer's port.

On AWS a preview is ``https://<slug>.<domain>`` behind the ALB's listener on 443. Locally
the listener is played on a loopback port (``branchenv local --alb-port``, 8080 by
default), so every URL branchenv shows (the intake's answer, the dashboard and its API,
Slack's "Open preview", GitHub's environment_url, the task's PREVIEW_URL) is
``http://<slug>.preview.localhost:8080``. chalicelib/domain/settings.py has no setting for
a port yet, so this subclass adds one for the local stack only; production code calls
``settings.preview_url(host)`` and never sees the difference. Never imported by the
deployed Lambda.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.domain.settings import Settings


@dataclass(frozen=True)
class LocalSettings(Settings):
    """:class:`Settings` whose preview URLs name the local load balancer's port."""

    preview_port: int | None = None

    def preview_url(self, host: str) -> str:
        base = super().preview_url(host)
        return f"{base}:{self.preview_port}" if self.preview_port else base


def local_settings(environ: Mapping[str, str], preview_port: int | None) -> Settings:
    """Settings read from ``environ`` (validated as always), previews on ``preview_port``."""
    settings = LocalSettings.from_environ(environ)  # Settings.from_environ builds ``cls``
    assert isinstance(settings, LocalSettings)
    return dataclasses.replace(settings, preview_port=preview_port)
