"""Designs parked in the ledger while they wait for their shop's quota.

A delivery whose quota slot is far off is written here (its message's bytes and properties, and
when it is due) and acknowledged, instead of travelling through delay queues once per rung: a
waiting design costs one row however long it waits. Each replica's releaser claims due rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's single writer), puts each message back on its
queue with a broker confirm, and deletes the row. A claim is a lease: a replica that dies between
the claim and the delete leaves rows another replica releases once the claim has run out, so a
parked design is as durable as the ledger it is parked in.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from service.store.database import Database

_COLUMNS = "id, queue, shop_id, design_id, revision, reason, due_at, parked_at"


class Parked(msgspec.Struct, frozen=True, kw_only=True):
    """A parked design, as an operator sees it."""

    id: str
    queue: str
    shop_id: str
    design_id: str
    revision: int
    reason: str
    due_at: float
    parked_at: float


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """A due message claimed for release: where it goes and what it is."""

    id: str
    queue: str
    body: bytes
    properties: bytes


class ParkingLot:
    def __init__(
        self, db: Database, clock: Callable[[], float] = time.time, claim_s: float = 30.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.claim_s = claim_s  # how long a claim keeps other replicas off a row

    async def park(
        self,
        *,
        queue: str,
        key: tuple[str, str, int],
        reason: str,
        due_at: float,
        body: bytes,
        properties: bytes,
    ) -> str:
        """Park one message until ``due_at``; its id."""
        parked_id = uuid.uuid4().hex
        await self.db.execute(
            "INSERT INTO parked_messages (id, queue, shop_id, design_id, revision, reason, "
            "due_at, parked_at, body, properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (parked_id, queue, *key, reason, due_at, self.clock(), body, properties.decode()),
        )
        return parked_id

    async def claim_due(self, owner: str, limit: int, lead_s: float = 0.0) -> list[Claimed]:
        """Claim up to ``limit`` messages due within ``lead_s``, earliest first, that no live
        claim of another releaser holds. ``owner``'s own claims are taken again: one whose
        answer was lost (the database went away mid-statement) is not left to run out."""
        now = self.clock()
        skip_locked = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        rows = await self.db.fetchall(
            "UPDATE parked_messages SET claimed_by = ?, claimed_until = ? WHERE id IN ("
            "SELECT id FROM parked_messages WHERE due_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?) "
            f"ORDER BY due_at LIMIT ?{skip_locked}) RETURNING id, queue, body, properties, due_at",
            (owner, now + self.claim_s, now + lead_s, now, owner, limit),
        )
        rows.sort(key=lambda r: float(r[4]))  # RETURNING keeps no order: release earliest first
        return [
            Claimed(id=str(r[0]), queue=str(r[1]), body=bytes(r[2]), properties=_bytes(r[3]))
            for r in rows
        ]

    async def released(self, owner: str, ids: list[str]) -> None:
        """The messages are back on their queues: forget them (only while still ours)."""
        if ids:
            marks = ", ".join("?" for _ in ids)
            await self.db.execute(
                f"DELETE FROM parked_messages WHERE claimed_by = ? AND id IN ({marks})",
                (owner, *ids),
            )

    async def unclaim(self, owner: str, ids: list[str]) -> None:
        """Release failed (the broker went away): let any replica take them at once."""
        if ids:
            marks = ", ".join("?" for _ in ids)
            await self.db.execute(
                "UPDATE parked_messages SET claimed_by = NULL, claimed_until = NULL "
                f"WHERE claimed_by = ? AND id IN ({marks})",
                (owner, *ids),
            )

    async def next_due(self) -> float | None:
        """When the earliest parked message is due (None when none is): one index lookup,
        claimed rows included (a claim lasts as long as one release takes)."""
        row = await self.db.fetchone("SELECT MIN(due_at) FROM parked_messages")
        return float(row[0]) if row and row[0] is not None else None

    async def counts(self) -> tuple[int, int]:
        """(parked, of which due now)."""
        row = await self.db.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END), 0) "
            "FROM parked_messages",
            (self.clock(),),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def longest_waits(self, limit: int) -> list[tuple[str, int, float]]:
        """The ``limit`` shops whose last parked design is due latest: (shop, parked designs,
        seconds until that last one is due), longest first."""
        now = self.clock()
        rows = await self.db.fetchall(
            "SELECT shop_id, COUNT(*), MAX(due_at) FROM parked_messages GROUP BY shop_id "
            "ORDER BY MAX(due_at) DESC, shop_id LIMIT ?",
            (limit,),
        )
        return [(str(r[0]), int(r[1]), max(0.0, float(r[2]) - now)) for r in rows]

    async def of_design(self, key: tuple[str, str, int]) -> list[Parked]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM parked_messages WHERE shop_id = ? AND design_id = ? "
            "AND revision = ? ORDER BY due_at",
            key,
        )
        return [_parked(r) for r in rows]


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _parked(row: tuple[Any, ...]) -> Parked:
    return Parked(**dict(zip(Parked.__struct_fields__, row, strict=True)))
