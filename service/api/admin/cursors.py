"""Keyset cursors for lists of designs: the (created_at, shop_id, design_id, revision) of a
page's last row, as an opaque base64url string."""

from __future__ import annotations

import base64

import msgspec

from service.errors import ActionError
from service.store.ledger import DesignRow


def cursor_of(row: DesignRow) -> str:
    raw = msgspec.json.encode([row.created_at, row.shop_id, row.design_id, row.revision])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_after(cursor: str | None) -> tuple[float, str, str, int] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, shop, design, revision = msgspec.json.decode(raw, type=tuple[float, str, str, int])
    except (ValueError, msgspec.MsgspecError):
        raise ActionError("cursor is not one this API handed out") from None
    return created, shop, design, revision
