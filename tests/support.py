"""Test-only helpers: fetched tools (skip locally, fail in CI) and webhook signing. The shared
helpers (broker, database, sandbox, processes, polling) live in ``service.testing``."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook


def cached_tool(script: str, what: str) -> str:
    """Run one of scripts/ensure-*.sh (it fetches a tool once into ~/.cache) and return the path
    it prints. Where it cannot be had, skip on a developer's machine and fail in CI."""
    import pytest

    root = Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(
            [str(root / "scripts" / script)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout.strip()
    except subprocess.CalledProcessError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{what} could not be fetched: {exc.stderr}")


def signed(
    secret: str,
    body: bytes,
    *,
    webhook_id: str | None = None,
    timestamp: float | None = None,
    content_type: str = "application/cloudevents+json",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(timestamp or time.time(), tz=UTC)
    return {
        "content-type": content_type,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, moment, body.decode()),
        **(extra or {}),
    }
