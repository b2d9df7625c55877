"""Timestamps on the wire: RFC 3339 in UTC with a ``Z``, the one form every event uses."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """``moment`` as RFC 3339 with ``Z`` (a naive datetime is taken to be UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))
