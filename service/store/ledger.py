"""The ledger: durable progress of every design and product, one SQL code path for SQLite and
PostgreSQL. Implements ``consumers.ports.DesignLedger`` and ``ProductLedger``.

A claim leases the row to one delivery (a random token) for ``lease_s`` seconds; every later
write is fenced by that token, so two replicas (or two deliveries in one process) working on
the same design resolve to one winner, and a delivery whose lease was taken over cannot write.

While the database is away (``LedgerUnavailable``): a write that records what an upstream
already did (a customization, a product, a scope, a publish) is tried again until the database
answers, for at most ``lease_s``, so the answer is not lost; a release is remembered and made
when the database is back (``release_pending``), so the design is not held for a whole lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from opentelemetry import trace

from consumers.ports import (
    Delivery,
    DesignKey,
    DesignProduct,
    DesignRecord,
    DesignRevision,
    DesignState,
    LeaseLost,
    LedgerUnavailable,
    OurProduct,
    ProductRecord,
    UpstreamChange,
)
from service.store.database import Database

_KEY = "shop_id = ? AND design_id = ? AND revision = ?"
_RECORD_COLUMNS = (
    "state, customization_id, product_requested, product_id, product_event, failed_event, attempts"
)


class DesignRow(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator sees of a design."""

    shop_id: str
    design_id: str
    revision: int
    state: str
    event_id: str
    customization_id: str | None
    product_id: str | None
    attempts: int
    last_stage: str | None
    last_code: str | None
    last_error: str | None
    created_at: float
    updated_at: float


class FailureCount(msgspec.Struct, frozen=True, kw_only=True):
    """Failed designs of one shop with one last failure (stage, code) and state."""

    stage: str
    code: str
    state: str
    shop_id: str
    designs: int
    first_seen: float
    last_seen: float
    sample: str | None  # one of their error details


_FAILED_STATES = "'failed', 'needs_reconciliation'"


class ContentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A product's object in the shop's Luigi's Box catalogue, as recorded."""

    identity: str
    available: bool
    indexed_at: float
    removed_at: float | None = None


class Withdrawal(msgspec.Struct, frozen=True, kw_only=True):
    """A design's tombstone: what an operator sees of its withdrawal."""

    up_to_revision: int | None  # None: every revision, any approved later included
    reason: str | None
    event_id: str
    withdrawn_at: float


class Step(msgspec.Struct, frozen=True, kw_only=True):
    step: str
    at: float
    code: str | None = None
    detail: str | None = None


_ROW_COLUMNS = ", ".join(DesignRow.__struct_fields__)
_RELEASE_DESIGN = (
    f"UPDATE designs SET lease_owner = NULL, lease_until = NULL WHERE {_KEY} AND lease_owner = ?"
)
_RELEASE_PRODUCT = (
    "UPDATE products SET lease_owner = NULL, lease_until = NULL, state = COALESCE(?, state), "
    "updated_at = ? WHERE product_id = ? AND lease_owner = ?"
)


# The highest revision recorded for the claimed design (its other revisions' rows included).
_NEWEST_REVISION = (
    "(SELECT MAX(d2.revision) FROM designs d2 "
    "WHERE d2.shop_id = designs.shop_id AND d2.design_id = designs.design_id)"
)
# The highest revision of the claimed product's design that has a product.
_NEWEST_PRODUCT = (
    "(SELECT MAX(d.revision) FROM designs d WHERE d.shop_id = products.shop_id "
    "AND d.design_id = products.design_id AND d.product_id IS NOT NULL)"
)
# Whether a withdrawal of the claimed design covers its revision (the tombstone wins races).
_WITHDRAWN = (
    "(SELECT COUNT(*) FROM design_withdrawals w WHERE w.shop_id = designs.shop_id "
    "AND w.design_id = designs.design_id "
    "AND (w.up_to_revision IS NULL OR w.up_to_revision >= designs.revision))"
)
# The same for the claimed product's revision.
_PRODUCT_WITHDRAWN = (
    "(SELECT COUNT(*) FROM design_withdrawals w JOIN designs d ON d.shop_id = w.shop_id "
    "AND d.design_id = w.design_id WHERE d.product_id = products.product_id "
    "AND (w.up_to_revision IS NULL OR w.up_to_revision >= d.revision))"
)
_PRODUCT_HELD = "EXISTS (SELECT 1 FROM products WHERE product_id = ? AND lease_owner = ?)"
_step_decoder = msgspec.json.Decoder(Step)
_step_encoder = msgspec.json.Encoder()


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def _line(step: str, code: str | None, detail: str | None, at: float) -> str:
    """One step as a line of ``designs.history`` (JSON, newline-terminated), and as an event
    ``ledger.<step>`` on the active span (a no-op without tracing): the step's error code is
    an attribute, its detail is not (an upstream's words belong in the ledger, not in traces)."""
    span = trace.get_current_span()
    if span.is_recording():
        attributes = {"merch.step": step, "error.type": code} if code else {"merch.step": step}
        span.add_event(f"ledger.{step}", attributes)
    return _step_encoder.encode(Step(step=step, at=at, code=code, detail=detail)).decode() + "\n"


T = TypeVar("T")
OnUnavailable = Callable[[LedgerUnavailable], Awaitable[None]]


class Ledger:
    def __init__(
        self,
        db: Database,
        lease_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        on_unavailable: OnUnavailable | None = None,
    ) -> None:
        self.db = db
        self.lease_s = lease_s
        self.clock = clock
        self.on_unavailable = on_unavailable  # told at once, so consumers stop taking messages
        self._unreleased: set[tuple[str, tuple[Any, ...]]] = set()  # (release SQL, params)
        self._let_go: set[tuple[DesignKey, str]] = set()  # leases released with their record

    async def _recorded(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a write that records an upstream's effect, again and again while the database is
        away, for at most the lease; then the answer is given up (``LedgerUnavailable``)."""
        deadline = time.monotonic() + self.lease_s
        pause = 0.1
        while True:
            try:
                return await write()
            except LedgerUnavailable as exc:
                if self.on_unavailable is not None:
                    await self.on_unavailable(exc)
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def _release(self, sql: str, params: tuple[Any, ...]) -> None:
        """A lease release; while the database is away it is remembered and made later."""
        try:
            await self.db.execute(sql, params)
        except LedgerUnavailable:
            self._unreleased.add((sql, params))

    async def release_pending(self) -> int:
        """Make the releases the database missed (how many); raises ``LedgerUnavailable`` if it
        is still away."""
        made = 0
        for sql, params in list(self._unreleased):
            await self.db.execute(sql, params)
            self._unreleased.discard((sql, params))
            made += 1
        return made

    async def heartbeat(self, replica: str) -> None:
        """A write, so a read-only primary or a locked SQLite file counts as away."""
        await self.db.execute(
            "INSERT INTO ledger_heartbeat (replica, at) VALUES (?, ?) "
            "ON CONFLICT (replica) DO UPDATE SET at = excluded.at",
            (replica, self.clock()),
        )

    # --- designs -------------------------------------------------------------------------

    async def claim(self, key: DesignKey, delivery: Delivery) -> DesignRecord | None:
        """Lease the design to this delivery (creating its row on its first delivery) and
        return its record, or None while another delivery holds it: one statement."""
        now = self.clock()
        event = _text(delivery.cloud_event) if delivery.cloud_event else None
        received = _line("received", None, f"event {delivery.event_id}", now)
        try:
            row = await self.db.fetchone(
                "INSERT INTO designs (shop_id, design_id, revision, state, event_id, "
                "design_event, attempts, lease_owner, lease_until, history, created_at, "
                "updated_at) VALUES (?, ?, ?, 'received', ?, ?, 1, ?, ?, ?, ?, ?) "
                "ON CONFLICT (shop_id, design_id, revision) DO UPDATE SET "
                "lease_owner = excluded.lease_owner, lease_until = excluded.lease_until, "
                "attempts = designs.attempts + 1, "
                "design_event = COALESCE(designs.design_event, excluded.design_event), "
                "updated_at = excluded.updated_at "
                "WHERE designs.lease_owner IS NULL OR designs.lease_until < ? "
                f"RETURNING {_RECORD_COLUMNS}, {_NEWEST_REVISION}, {_WITHDRAWN}",
                (
                    *_k(key),
                    delivery.event_id,
                    event,
                    delivery.token,
                    now + self.lease_s,
                    received,
                    now,
                    now,
                    now,
                ),
            )
        except LedgerUnavailable:
            # The lease may have been taken with the answer lost: release it once the database
            # is back, or the design would wait a whole lease for a delivery that is gone.
            self._unreleased.add((_RELEASE_DESIGN, (*_k(key), delivery.token)))
            raise
        return _record(key, row) if row is not None else None

    async def _fenced(
        self,
        key: DesignKey,
        token: str,
        assignments: str,
        params: tuple[Any, ...],
        steps: tuple[tuple[str, str | None, str | None], ...] = (),
        *,
        let_go: bool = False,
    ) -> None:
        """One UPDATE of the design while this delivery holds it, appending ``steps`` to its
        history; with ``let_go``, the lease is released in the same statement."""
        now = self.clock()
        if steps:
            assignments += ", history = COALESCE(history, '') || ?"
            params = (*params, "".join(_line(*step, now) for step in steps))
        if let_go:
            assignments += ", lease_owner = NULL, lease_until = NULL"
        changed = await self.db.execute(
            f"UPDATE designs SET {assignments}, updated_at = ? WHERE {_KEY} AND lease_owner = ?",
            (*params, now, *_k(key), token),
        )
        if not changed:
            raise LeaseLost(f"lease on {key} is no longer held by this delivery")

    async def record_customization(
        self, key: DesignKey, token: str, customization_id: str, *, product_requested: bool = False
    ) -> None:
        """The customization Fourthwall made; with ``product_requested``, also that its product
        is about to be asked for (one statement instead of two)."""
        assignments = "state = 'customization_created', customization_id = ?"
        steps: tuple[tuple[str, str | None, str | None], ...] = (
            ("customization_created", None, customization_id),
        )
        if product_requested:
            assignments += ", product_requested = 1"
            steps = (*steps, ("product_requested", None, None))
        await self._recorded(
            lambda: self._fenced(key, token, assignments, (customization_id,), steps)
        )

    async def record_superseded(self, key: DesignKey, token: str, newest: int) -> None:
        step = ("superseded", None, f"revision {newest} is recorded: nothing done")
        await self._recorded(lambda: self._fenced(key, token, "state = 'superseded'", (), (step,)))

    async def record_withdrawn(self, key: DesignKey, token: str, detail: str) -> None:
        step = ("withdrawn", None, detail)
        await self._recorded(
            lambda: self._fenced(key, token, "state = 'withdrawn'", (), (step,), let_go=True)
        )
        self._let_go.add((key, token))

    async def hold_revision(self, key: DesignKey, token: str) -> DesignRevision | None:
        now = self.clock()
        row = await self.db.fetchone(
            "UPDATE designs SET lease_owner = ?, lease_until = ? "
            f"WHERE {_KEY} AND (lease_owner IS NULL OR lease_until < ?) "
            "RETURNING state, product_id, "
            "(SELECT p.state FROM products p WHERE p.product_id = designs.product_id)",
            (token, now + self.lease_s, *_k(key), now),
        )
        if row is None:
            return None
        return DesignRevision(
            revision=key.revision,
            state=str(row[0]),
            product_id=None if row[1] is None else str(row[1]),
            product_state=None if row[2] is None else str(row[2]),
        )

    # --- Fourthwall's own changes (its webhooks) ------------------------------------------

    async def our_product(self, product_id: str) -> OurProduct | None:
        row = await self.db.fetchone(
            "SELECT d.shop_id, d.design_id, d.revision, f.changed_at, f.access FROM designs d "
            "LEFT JOIN fourthwall_changes f ON f.product_id = d.product_id "
            "WHERE d.product_id = ?",
            (product_id,),
        )
        if row is None:
            return None
        return OurProduct(
            shop_id=str(row[0]),
            design_id=str(row[1]),
            revision=int(row[2]),
            last_change_at=None if row[3] is None else float(row[3]),
            last_access=None if row[4] is None else str(row[4]),
        )

    async def record_change(
        self, product_id: str, token: str, change: UpstreamChange, available: bool | None
    ) -> bool:
        now = self.clock()

        async def write() -> bool:
            await self._product_held(product_id, token)
            newest = await self.db.execute(
                "INSERT INTO fourthwall_changes (product_id, shop_id, changed_at, state, access, "
                "stock, name, event_id, applied_at) SELECT CAST(? AS TEXT), shop_id, "
                "CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), "
                "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION) FROM products "
                "WHERE product_id = ? "
                "ON CONFLICT (product_id) DO UPDATE SET changed_at = excluded.changed_at, "
                "state = excluded.state, access = COALESCE(excluded.access, "
                "fourthwall_changes.access), stock = COALESCE(excluded.stock, "
                "fourthwall_changes.stock), name = excluded.name, event_id = excluded.event_id, "
                "applied_at = excluded.applied_at "
                "WHERE fourthwall_changes.changed_at < excluded.changed_at",
                (
                    product_id,
                    change.changed_at,
                    change.access or change.stock or "",  # what `state` meant before schema 15
                    change.access,
                    change.stock,
                    change.name,
                    change.event_id,
                    now,
                    product_id,
                ),
            )
            if not newest:
                return False
            if available is not None:
                await self.db.execute(
                    "UPDATE product_content SET available = ? WHERE product_id = ?",
                    (1 if available else 0, product_id),
                )
            step = _line(
                f"fourthwall_{(change.access or 'changed').lower()}",
                None,
                f"{change.name!r}, stock {change.stock or 'not told'}, "
                f"Fourthwall event {change.event_id}",
                now,
            )
            await self.db.execute(
                "UPDATE designs SET history = COALESCE(history, '') || ?, updated_at = ? "
                "WHERE product_id = ?",
                (step, now, product_id),
            )
            return True

        return await self._recorded(write)

    # --- withdrawals ---------------------------------------------------------------------

    async def record_withdrawal(
        self,
        shop_id: str,
        design_id: str,
        up_to_revision: int | None,
        reason: str | None,
        event_id: str,
    ) -> None:
        await self._recorded(
            lambda: self.db.execute(
                "INSERT INTO design_withdrawals (shop_id, design_id, up_to_revision, reason, "
                "event_id, withdrawn_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (shop_id, design_id) DO UPDATE SET up_to_revision = CASE "
                "WHEN design_withdrawals.up_to_revision IS NULL "
                "OR excluded.up_to_revision IS NULL THEN NULL "
                "WHEN excluded.up_to_revision > design_withdrawals.up_to_revision "
                "THEN excluded.up_to_revision ELSE design_withdrawals.up_to_revision END, "
                "reason = COALESCE(excluded.reason, design_withdrawals.reason), "
                "event_id = excluded.event_id",
                (shop_id, design_id, up_to_revision, reason, event_id, self.clock()),
            )
        )

    async def withdrawal(self, shop_id: str, design_id: str) -> Withdrawal | None:
        row = await self.db.fetchone(
            "SELECT up_to_revision, reason, event_id, withdrawn_at FROM design_withdrawals "
            "WHERE shop_id = ? AND design_id = ?",
            (shop_id, design_id),
        )
        if row is None:
            return None
        return Withdrawal(
            up_to_revision=None if row[0] is None else int(row[0]),
            reason=row[1],
            event_id=str(row[2]),
            withdrawn_at=float(row[3]),
        )

    async def revisions(self, shop_id: str, design_id: str) -> list[DesignRevision]:
        rows = await self.db.fetchall(
            "SELECT d.revision, d.state, d.product_id, p.state FROM designs d "
            "LEFT JOIN products p ON p.product_id = d.product_id "
            "WHERE d.shop_id = ? AND d.design_id = ? ORDER BY d.revision",
            (shop_id, design_id),
        )
        return [
            DesignRevision(
                revision=int(r[0]),
                state=str(r[1]),
                product_id=None if r[2] is None else str(r[2]),
                product_state=None if r[3] is None else str(r[3]),
            )
            for r in rows
        ]

    async def record_product_requested(self, key: DesignKey, token: str, requested: bool) -> None:
        steps = (("product_requested", None, None),) if requested else ()
        await self._fenced(key, token, "product_requested = ?", (1 if requested else 0,), steps)

    async def record_product(
        self, key: DesignKey, token: str, product_id: str, product_event: bytes
    ) -> None:
        """The product Fourthwall made; the design is done, so its lease goes in the same
        statement (the release that follows is then a no-op)."""
        await self._recorded(
            lambda: self._fenced(
                key,
                token,
                "state = 'product_created', product_id = ?, product_event = ?",
                (product_id, _text(product_event)),
                (("product_created", None, product_id),),
                let_go=True,
            )
        )
        self._let_go.add((key, token))

    async def record_error(
        self, key: DesignKey, token: str, *, stage: str, code: str, detail: str
    ) -> None:
        await self._fenced(
            key,
            token,
            "last_stage = ?, last_code = ?, last_error = ?",
            (stage, code, detail),
            (("transient_error", code, detail),),
        )

    async def record_failed(
        self,
        key: DesignKey,
        token: str,
        *,
        state: DesignState,
        stage: str,
        code: str,
        detail: str,
        failed_event: bytes,
    ) -> None:
        await self._fenced(
            key,
            token,
            "state = ?, last_stage = ?, last_code = ?, last_error = ?, failed_event = ?",
            (state, stage, code, detail, _text(failed_event)),
            ((state, code, detail),),
        )

    async def release(self, key: DesignKey, token: str) -> None:
        if (key, token) in self._let_go:  # released with the product's record
            self._let_go.discard((key, token))
            return
        await self._release(_RELEASE_DESIGN, (*_k(key), token))

    async def uploaded_image(self, shop_id: str, content_hash: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT image_id FROM artwork_images WHERE shop_id = ? AND content_hash = ?",
            (shop_id, content_hash),
        )
        return str(row[0]) if row else None

    async def record_uploaded_image(self, shop_id: str, content_hash: str, image_id: str) -> None:
        """Records an upload Fourthwall made: kept through a short outage, as every effect."""
        await self._recorded(
            lambda: self.db.execute(
                "INSERT INTO artwork_images (shop_id, content_hash, image_id, uploaded_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (shop_id, content_hash) DO NOTHING",
                (shop_id, content_hash, image_id, self.clock()),
            )
        )

    async def mark_published(self, key: DesignKey) -> None:
        """After product.created was confirmed by the broker: recorded like an effect."""
        await self._recorded(
            lambda: self.db.execute(
                "UPDATE designs SET state = 'published', history = COALESCE(history, '') || ?, "
                f"updated_at = ? WHERE {_KEY} AND state = 'product_created'",
                (_line("published", None, None, self.clock()), self.clock(), *_k(key)),
            )
        )

    # --- what an operator does (admin API) ------------------------------------------------
    # Each is one conditional UPDATE: it applies only in the state it is meant for and only
    # while no delivery holds the lease, so it cannot race a consumer working on the design.

    async def design_event(self, key: DesignKey) -> bytes | None:
        """The design.approved CloudEvent as first received (None for designs claimed before
        migration 4 kept it)."""
        row = await self.db.fetchone(f"SELECT design_event FROM designs WHERE {_KEY}", _k(key))
        return row[0].encode() if row and row[0] else None

    async def reopen(self, key: DesignKey, token: str, operator: str) -> DesignRecord:
        """A failed design goes back to its last good step (customization kept, if made).
        ``product_requested`` stays: if Fourthwall did build the product, the next call says
        so and the design goes to needs_reconciliation instead of a second product."""
        await self._fenced(
            key,
            token,
            "state = CASE WHEN customization_id IS NULL THEN 'received' "
            "ELSE 'customization_created' END, failed_event = NULL",
            (),
            (("retry_requested", None, f"by {operator}"),),
        )
        record = await self.record(key)
        assert record is not None
        return record

    async def reconcile(
        self, key: DesignKey, product_id: str, product_event: bytes, operator: str
    ) -> bool:
        """Record the product an operator found on Fourthwall for a design that needs
        reconciliation; the design is product_created and its product.created can go out."""
        now = self.clock()
        step = _line("reconciled", None, f"product {product_id}, by {operator}", now)
        changed = await self.db.execute(
            "UPDATE designs SET state = 'product_created', product_id = ?, product_event = ?, "
            "failed_event = NULL, history = COALESCE(history, '') || ?, updated_at = ? "
            f"WHERE {_KEY} AND state = 'needs_reconciliation' "
            "AND (lease_owner IS NULL OR lease_until < ?)",
            (product_id, _text(product_event), step, now, *_k(key), now),
        )
        return bool(changed)

    async def record(self, key: DesignKey) -> DesignRecord | None:
        """The design's record without taking its lease (for the admin API)."""
        row = await self.db.fetchone(f"SELECT {_RECORD_COLUMNS} FROM designs WHERE {_KEY}", _k(key))
        return _record(key, row) if row else None

    async def design(self, key: DesignKey) -> DesignRow | None:
        row = await self.db.fetchone(f"SELECT {_ROW_COLUMNS} FROM designs WHERE {_KEY}", _k(key))
        return _design_row(row) if row else None

    async def designs(
        self,
        *,
        shop_id: str | None = None,
        state: str | None = None,
        design_id: str | None = None,
        after: tuple[float, str, str, int] | None = None,
        limit: int = 1000,
    ) -> list[DesignRow]:
        """Designs in the order they arrived; ``after`` is the (created_at, shop_id, design_id,
        revision) of the last row of the previous page (keyset pagination)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, value in (("shop_id", shop_id), ("state", state), ("design_id", design_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return await self._design_page(where, params, after, limit)

    async def steps(self, key: DesignKey) -> list[Step]:
        """Every step, oldest first: rows of ``design_steps`` (written before schema 10, and by
        a replica of the previous version) and the design's ``history``."""
        rows = await self.db.fetchall(
            f"SELECT step, at, code, detail FROM design_steps WHERE {_KEY} ORDER BY id", _k(key)
        )
        found = [Step(step=r[0], at=r[1], code=r[2], detail=r[3]) for r in rows]
        history = await self.db.fetchone(f"SELECT history FROM designs WHERE {_KEY}", _k(key))
        if history and history[0]:
            found += [_step_decoder.decode(line) for line in history[0].splitlines() if line]
        return sorted(found, key=lambda step: step.at)  # stable: equal times keep their order

    async def failure_counts(self) -> list[FailureCount]:
        """Failed and needs_reconciliation designs counted by (stage, code, state) and, within
        that, by shop: the rows the failure groups of the admin API are made from."""
        rows = await self.db.fetchall(
            "SELECT last_stage, last_code, state, shop_id, COUNT(*), MIN(updated_at), "
            "MAX(updated_at), MAX(last_error) FROM designs WHERE state IN "
            f"({_FAILED_STATES}) GROUP BY last_stage, last_code, state, shop_id"
        )
        return [
            FailureCount(
                stage=r[0] or "unknown",
                code=r[1] or "UNKNOWN",
                state=r[2],
                shop_id=r[3],
                designs=int(r[4]),
                first_seen=float(r[5]),
                last_seen=float(r[6]),
                sample=r[7],
            )
            for r in rows
        ]

    async def failed_designs(
        self,
        stage: str,
        code: str,
        *,
        shop_id: str | None = None,
        after: tuple[float, str, str, int] | None = None,
        limit: int = 100,
    ) -> list[DesignRow]:
        """The failed and needs_reconciliation designs whose last failure is ``stage`` and
        ``code``, in the order they arrived (keyset pagination as ``designs``)."""
        where = [f"state IN ({_FAILED_STATES})", "last_stage = ?", "last_code = ?"]
        params: list[Any] = [stage, code]
        if shop_id is not None:
            where.append("shop_id = ?")
            params.append(shop_id)
        return await self._design_page(where, params, after, limit)

    async def _design_page(
        self,
        where: list[str],
        params: list[Any],
        after: tuple[float, str, str, int] | None,
        limit: int,
    ) -> list[DesignRow]:
        """Designs matching ``where``, in the order they arrived, after the keyset ``after``."""
        if after is not None:
            where = [*where, "(created_at, shop_id, design_id, revision) > (?, ?, ?, ?)"]
            params = [*params, *after]
        rows = await self.db.fetchall(
            f"SELECT {_ROW_COLUMNS} FROM designs WHERE {' AND '.join(where)} "
            "ORDER BY created_at, shop_id, design_id, revision LIMIT ?",
            (*params, limit),
        )
        return [_design_row(r) for r in rows]

    async def count_by_state(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT state, COUNT(*) FROM designs GROUP BY state")
        return {str(r[0]): int(r[1]) for r in rows}

    # --- products and their pin scopes ----------------------------------------------------

    async def claim_product(
        self, product_id: str, shop_id: str, design_id: str, token: str
    ) -> ProductRecord | None:
        """Lease the product to this delivery (creating its row on the first); its scopes
        recorded so far, which a first claim knows to be none without asking."""
        now = self.clock()
        try:
            row = await self.db.fetchone(
                "INSERT INTO products (product_id, shop_id, design_id, state, lease_owner, "
                "lease_until, claims, updated_at) VALUES (?, ?, ?, 'pins_pending', ?, ?, 1, ?) "
                "ON CONFLICT (product_id) DO UPDATE SET lease_owner = excluded.lease_owner, "
                "lease_until = excluded.lease_until, updated_at = excluded.updated_at, "
                # a row an earlier version made has claims 0: never taken for a first claim
                "claims = CASE WHEN products.claims = 0 THEN 2 ELSE products.claims + 1 END "
                "WHERE products.lease_owner IS NULL OR products.lease_until < ? "
                f"RETURNING claims, state, {_NEWEST_PRODUCT}, {_PRODUCT_WITHDRAWN}",
                (product_id, shop_id, design_id, token, now + self.lease_s, now, now),
            )
            if row is None:
                return None
            if int(row[0]) == 1:
                return ProductRecord(
                    scopes={},
                    requested=frozenset(),
                    state=str(row[1]),
                    newest_revision=None if row[2] is None else int(row[2]),
                    withdrawn=bool(row[3]),
                )
            rows = await self.db.fetchall(
                "SELECT rule_key, scope, 0 FROM pin_scopes WHERE product_id = ? UNION ALL "
                "SELECT rule_key, NULL, 0 FROM pin_scope_requests WHERE product_id = ? UNION ALL "
                "SELECT identity, NULL, 1 FROM product_content WHERE product_id = ?",
                (product_id, product_id, product_id),
            )
        except LedgerUnavailable:  # as in claim: the lease may be taken, the answer lost
            self._unreleased.add((_RELEASE_PRODUCT, (None, self.clock(), product_id, token)))
            raise
        pins = [r for r in rows if not r[2]]
        return ProductRecord(
            scopes={str(r[0]): str(r[1]).encode() for r in pins if r[1] is not None},
            requested=frozenset(str(r[0]) for r in pins if r[1] is None),
            indexed=next((str(r[0]) for r in rows if r[2]), None),
            state=str(row[1]),
            newest_revision=None if row[2] is None else int(row[2]),
            withdrawn=bool(row[3]),
        )

    async def design_products(self, shop_id: str, design_id: str) -> list[DesignProduct]:
        rows = await self.db.fetchall(
            "SELECT d.revision, d.product_id, p.state FROM designs d "
            "LEFT JOIN products p ON p.product_id = d.product_id "
            "WHERE d.shop_id = ? AND d.design_id = ? AND d.product_id IS NOT NULL "
            "ORDER BY d.revision",
            (shop_id, design_id),
        )
        return [
            DesignProduct(
                revision=int(r[0]), product_id=str(r[1]), state=None if r[2] is None else str(r[2])
            )
            for r in rows
        ]

    async def record_retired(self, product_id: str, token: str, state: str) -> None:
        now = self.clock()

        async def write() -> None:
            held = await self.db.execute(
                "UPDATE products SET state = ?, updated_at = ? "
                "WHERE product_id = ? AND lease_owner = ?",
                (state, now, product_id, token),
            )
            if not held:
                raise LeaseLost(f"lease on product {product_id} is no longer held")
            await self.db.execute(
                "UPDATE product_content SET removed_at = ? "
                "WHERE product_id = ? AND removed_at IS NULL",
                (now, product_id),
            )

        await self._recorded(write)

    async def record_content(
        self, product_id: str, token: str, identity: str, available: bool
    ) -> None:
        await self._recorded(
            lambda: self._while_held(
                product_id,
                token,
                "INSERT INTO product_content (product_id, shop_id, identity, available, "
                "indexed_at) SELECT CAST(? AS TEXT), shop_id, CAST(? AS TEXT), "
                "CAST(? AS INTEGER), CAST(? AS DOUBLE PRECISION) FROM products "
                "WHERE product_id = ? AND lease_owner = ? "
                "ON CONFLICT (product_id) DO UPDATE SET identity = excluded.identity, "
                "available = excluded.available, indexed_at = excluded.indexed_at, "
                "removed_at = NULL",
                (product_id, identity, 1 if available else 0, self.clock()),
            )
        )

    async def content(self, product_id: str) -> ContentRow | None:
        """The product's catalogue object as recorded, or None if it was never indexed."""
        row = await self.db.fetchone(
            "SELECT identity, available, indexed_at, removed_at FROM product_content "
            "WHERE product_id = ?",
            (product_id,),
        )
        if row is None:
            return None
        return ContentRow(
            identity=str(row[0]),
            available=bool(row[1]),
            indexed_at=float(row[2]),
            removed_at=None if row[3] is None else float(row[3]),
        )

    async def pinned_without_content(self, after: str, limit: int) -> list[tuple[str, str, bytes]]:
        """Products pinned before their catalogue object existed (by an earlier version):
        (product_id, design_id, the design's product.created event), by product id after
        ``after``, at most ``limit``."""
        rows = await self.db.fetchall(
            "SELECT p.product_id, p.design_id, d.product_event FROM products p "
            "JOIN designs d ON d.product_id = p.product_id AND d.shop_id = p.shop_id "
            "WHERE p.state = 'pins_created' AND d.product_event IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM product_content c WHERE c.product_id = p.product_id) "
            "AND p.product_id > ? ORDER BY p.product_id LIMIT ?",
            (after, limit),
        )
        return [(str(r[0]), str(r[1]), str(r[2]).encode()) for r in rows]

    async def record_content_backfilled(
        self, product_id: str, shop_id: str, identity: str, available: bool
    ) -> None:
        """``backfill-content``: the catalogue object of a product an earlier version pinned."""
        await self.db.execute(
            "INSERT INTO product_content (product_id, shop_id, identity, available, indexed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (product_id) DO NOTHING",
            (product_id, shop_id, identity, 1 if available else 0, self.clock()),
        )

    async def record_scope_requested(self, product_id: str, token: str, rule_key: str) -> None:
        await self._while_held(
            product_id,
            token,
            "INSERT INTO pin_scope_requests (product_id, rule_key, requested_at) "
            "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION) "
            f"WHERE {_PRODUCT_HELD} ON CONFLICT (product_id, rule_key) DO NOTHING",
            (product_id, rule_key, self.clock()),
        )

    async def _while_held(
        self, product_id: str, token: str, insert: str, params: tuple[Any, ...]
    ) -> None:
        """An INSERT … SELECT that writes only while this delivery holds the product: one
        statement; a second only when nothing was written (held, and already there: fine; not
        held: ``LeaseLost``)."""
        if not await self.db.execute(insert, (*params, product_id, token)):
            await self._product_held(product_id, token)

    async def _product_held(self, product_id: str, token: str) -> None:
        held = await self.db.execute(
            "UPDATE products SET updated_at = ? WHERE product_id = ? AND lease_owner = ?",
            (self.clock(), product_id, token),
        )
        if not held:
            raise LeaseLost(f"lease on product {product_id} is no longer held")

    async def record_scope(
        self, product_id: str, token: str, rule_key: str, scope_id: str, scope: bytes
    ) -> None:
        await self._recorded(
            lambda: self._while_held(
                product_id,
                token,
                "INSERT INTO pin_scopes (product_id, rule_key, scope_id, scope, created_at) "
                "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), "
                f"CAST(? AS DOUBLE PRECISION) WHERE {_PRODUCT_HELD} "
                "ON CONFLICT (product_id, rule_key) DO NOTHING",
                (product_id, rule_key, scope_id, _text(scope), self.clock()),
            )
        )

    async def finish_product(self, product_id: str, token: str, state: str | None) -> None:
        await self._release(_RELEASE_PRODUCT, (state, self.clock(), product_id, token))

    async def scope_ids(self, product_id: str) -> dict[str, str]:
        rows = await self.db.fetchall(
            "SELECT rule_key, scope_id FROM pin_scopes WHERE product_id = ?", (product_id,)
        )
        return {str(r[0]): str(r[1]) for r in rows}


def _k(key: DesignKey) -> tuple[str, str, int]:
    return key.shop_id, key.design_id, key.revision


def _record(key: DesignKey, row: tuple[Any, ...]) -> DesignRecord:
    state, customization_id, requested, product_id, product_event, failed_event, n = row[:7]
    newest = int(row[7]) if len(row) > 7 and row[7] is not None else None
    withdrawn = bool(row[8]) if len(row) > 8 else False
    return DesignRecord(
        key=key,
        state=state,
        customization_id=customization_id,
        product_requested=bool(requested),
        product_id=product_id,
        product_event=product_event.encode() if product_event else None,
        failed_event=failed_event.encode() if failed_event else None,
        attempts=int(n),
        newest_revision=newest,
        withdrawn=withdrawn,
    )


def _design_row(row: tuple[Any, ...]) -> DesignRow:
    return DesignRow(**dict(zip(DesignRow.__struct_fields__, row, strict=True)))
