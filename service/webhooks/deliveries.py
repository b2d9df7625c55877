"""Webhook deliveries by ``webhook-id`` in the ledger's database: the idempotency record."""

from __future__ import annotations

import time
from collections.abc import Callable

from service.store.database import Database

KEEP_S = 24 * 3600.0  # far longer than the timestamp tolerance a replay must fall within


class Deliveries:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def claim(self, webhook_id: str, producer: str, events: int) -> str | None:
        """Claim a new delivery (None), or return the state of one seen before."""
        now = self.clock()
        await self.db.execute(
            "DELETE FROM webhook_deliveries WHERE received_at < ?", (now - KEEP_S,)
        )
        claimed = await self.db.execute(
            "INSERT INTO webhook_deliveries (webhook_id, producer, state, events, received_at) "
            "VALUES (?, ?, 'publishing', ?, ?) ON CONFLICT (webhook_id) DO NOTHING",
            (webhook_id, producer, events, now),
        )
        if claimed:
            return None
        row = await self.db.fetchone(
            "SELECT state FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,)
        )
        return str(row[0]) if row else "publishing"

    async def published(self, webhook_id: str) -> None:
        await self.db.execute(
            "UPDATE webhook_deliveries SET state = 'published' WHERE webhook_id = ?", (webhook_id,)
        )

    async def release(self, webhook_id: str) -> None:
        """The publish failed: forget the claim so the producer's retry goes through."""
        await self.db.execute(
            "DELETE FROM webhook_deliveries WHERE webhook_id = ? AND state = 'publishing'",
            (webhook_id,),
        )
