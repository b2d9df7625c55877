"""The shared quota store: per shop, the calls made and the slots planned, in the ledger's
database, so every replica sees the same state.

``take`` answers "may this delivery call Fourthwall now?". The truth is the log of calls made:
a call is granted only if the windows of calls made stay within the limit at the moment of the
grant. A call counts from its grant until its answer arrived (``finished``), or until grant +
HTTP timeout if none came: Fourthwall counts it when the request arrives, somewhere in between,
so a call that would be the (limit+1)-th in a window is granted no earlier than the end of the
call it displaces plus the window, whatever the delay between a grant and the request's arrival
(a slow connection, a busy event loop, a throttled pod).

Waiting deliveries are given a *planned* slot (a ticket) in first-come order, so a backlog is
spread over future slots instead of every waiting message racing for each one; the delivery is
parked until its slot (or deferred through the broker) and presents its ticket when it comes
back. A design's first request plans two slots, one after the other: its customization's and
its product's (``pair``; the second ticket is the first's with ``PAIRED_SUFFIX``), so a design
holding its customization gets its product's slot before a later design starts. Each decision
is one transaction under a per-shop lock (an advisory lock on PostgreSQL; SQLite has one
writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec

from consumers.ports import LedgerUnavailable, Slot
from service.quota.slots import Limit, earliest_slot, wait_for_window
from service.store.database import Database, Transaction

# A planned slot whose holder has not come back this long after its time is abandoned (its
# message failed, was a duplicate, or its process died): it stops holding capacity.
STALE_AFTER_S = 30.0
TOLERANCE_S = 0.002
IN_FLIGHT_POLL_S = 0.02  # how soon a call in flight is expected to have answered
PAIRED_SUFFIX = ".then"


def paired(ticket: str | None) -> str | None:
    """The ticket of the call planned right after ``ticket``'s (see ``take(pair=True)``)."""
    return None if ticket is None or ticket.endswith(PAIRED_SUFFIX) else ticket + PAIRED_SUFFIX


class QuotaState(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator sees of one shop's quota."""

    shop_id: str
    heavy_calls: int
    heavy_window_s: float
    calls_in_window: int
    planned: int
    next_free_at: float
    not_before: float
    throttled: int
    deferred: int


class QuotaStore:
    def __init__(
        self,
        db: Database,
        limits_for: Callable[[str], tuple[Limit, Limit]],
        *,
        clock: Callable[[], float] = time.time,
        max_hold_s: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_timeout_s: float = 30.0,
    ) -> None:
        self.db = db
        self.limits_for = limits_for  # shop → (heavy limit, general limit)
        self.clock = clock
        self.max_hold_s = max_hold_s
        self.sleep = sleep
        self.call_timeout_s = call_timeout_s  # how long an unfinished call may still count

    async def take(self, shop_id: str, ticket: str | None, *, pair: bool = False) -> Slot:
        """A granted slot, or how long to wait and the ticket to come back with. Waits that add
        up to no more than ``max_hold_s`` are waited out here rather than through the broker
        (a slot due in a moment, a call in flight about to answer). With ``pair``, a request
        without a ticket also plans the next call's slot right after its own (``Slot.then``)."""
        slot = await self._take_once(shop_id, ticket, pair)
        held = 0.0
        while not slot.granted and held + slot.wait_s <= self.max_hold_s:
            await self.sleep(slot.wait_s)
            held += slot.wait_s
            slot = await self._take_once(shop_id, slot.ticket, pair)
        return slot

    async def finished(self, shop_id: str, slot: Slot) -> None:
        """The call's answer arrived. While the ledger is away it stays counted to its grant +
        timeout, which only costs capacity."""
        if slot.ticket is None:
            return
        with contextlib.suppress(LedgerUnavailable):
            await self.db.execute(
                "UPDATE quota_slots SET done_at = ? WHERE ticket = ? AND used = 1",
                (self.clock(), slot.ticket),
            )

    async def cancel(self, shop_id: str, ticket: str | None) -> None:
        if ticket is not None:
            await self.db.execute(
                "DELETE FROM quota_slots WHERE ticket = ? AND shop_id = ? AND used = 0",
                (ticket, shop_id),
            )

    async def _take_once(self, shop_id: str, ticket: str | None, pair: bool = False) -> Slot:
        heavy, general = self.limits_for(shop_id)
        async with self.db.transaction(lock=f"quota:{shop_id}") as tx:
            now = self.clock()
            not_before = await _shop_row(tx, shop_id)
            horizon = now - max(heavy.window, general.window, STALE_AFTER_S) - self.call_timeout_s
            await tx.execute(
                "DELETE FROM quota_slots WHERE shop_id = ? AND at < ?", (shop_id, horizon)
            )
            rows = await tx.fetchall(
                "SELECT ticket, at, used, done_at FROM quota_slots WHERE shop_id = ? ORDER BY at",
                (shop_id,),
            )
            made = [(float(at), done) for _, at, u, done in rows if u]
            planned = [float(at) for _, at, u, _ in rows if not u and at >= now - STALE_AFTER_S]
            # Planning assumes a call in flight answers soon; granting waits for its answer.
            live = [self._expected_end(at, done, now) for at, done in made] + planned
            mine = next(
                (r for r in rows if ticket is not None and r[0] == ticket and not r[2]), None
            )
            window_wait = self._window_wait(made, now, (heavy, general), not_before)
            if mine is None:
                at = earliest_slot(live, now, not_before, heavy)
                ticket = uuid.uuid4().hex
                then = paired(ticket) if pair else None
                granted = at <= now + TOLERANCE_S and window_wait <= TOLERANCE_S
                at = now if granted else at
                await _insert(tx, ticket, shop_id, at, used=granted)
                if then is not None:  # the design's next call, planned right after this one
                    next_at = earliest_slot([*live, at], max(now, at), not_before, heavy)
                    await _insert(tx, then, shop_id, next_at, used=False)
                if granted:
                    return Slot(granted=True, ticket=ticket, then=then)
                await _count_deferral(tx, shop_id)
                wait = max(at - now, window_wait)
                return Slot(granted=False, wait_s=wait, ticket=ticket, then=then)
            then = paired(ticket) if pair else None
            wait = max(float(mine[1]) - now, window_wait)
            if wait <= TOLERANCE_S:
                await tx.execute(
                    "UPDATE quota_slots SET used = 1, at = ? WHERE ticket = ?", (now, ticket)
                )
                return Slot(granted=True, ticket=ticket, then=then)
            await tx.execute("UPDATE quota_slots SET at = ? WHERE ticket = ?", (now + wait, ticket))
            await _count_deferral(tx, shop_id)
            return Slot(granted=False, wait_s=wait, ticket=ticket, then=then)

    def _window_wait(
        self,
        made: list[tuple[float, float | None]],
        now: float,
        limits: tuple[Limit, ...],
        not_before: float,
    ) -> float:
        """0 when one more call now keeps every window within its limit, counting each call
        made until its answer (until its grant + timeout while it has none); else how long to
        wait, expecting a call in flight to answer within ``IN_FLIGHT_POLL_S``."""
        counted = [done if done is not None else at + self.call_timeout_s for at, done in made]
        expected = [self._expected_end(at, done, now) for at, done in made]  # planning
        blocked = max([wait_for_window(counted, now, limit) for limit in limits])
        estimate = max([wait_for_window(expected, now, limit) for limit in limits])
        if max(blocked, not_before - now) <= TOLERANCE_S:
            return 0.0
        if blocked <= TOLERANCE_S:
            return not_before - now
        return max(estimate, not_before - now, IN_FLIGHT_POLL_S)

    def _expected_end(self, at: float, done_at: float | None, now: float) -> float:
        """When a call stops counting, as far as planning can tell: its answer; for one in
        flight, soon (but no later than its grant + timeout, when it stops counting anyway)."""
        if done_at is not None:
            return float(done_at)
        return min(at + self.call_timeout_s, max(at, now + IN_FLIGHT_POLL_S))

    async def throttled(self, shop_id: str, retry_after_s: float | None) -> float:
        """Fourthwall said 429 anyway (someone else spent the quota): no call for this shop from
        any replica before ``Retry-After`` (or a whole window). Returns the wait."""
        heavy, _ = self.limits_for(shop_id)
        wait = retry_after_s if retry_after_s is not None else heavy.window
        async with self.db.transaction(lock=f"quota:{shop_id}") as tx:
            now = self.clock()
            await _shop_row(tx, shop_id)
            await tx.execute(
                "UPDATE quota_shops SET not_before = CASE WHEN not_before > ? THEN not_before "
                "ELSE ? END, throttled = throttled + 1 WHERE shop_id = ?",
                (now + wait, now + wait, shop_id),
            )
        return wait

    async def state(self, shop_id: str) -> QuotaState:
        heavy, _ = self.limits_for(shop_id)
        async with self.db.transaction(lock=f"quota:{shop_id}") as tx:
            now = self.clock()
            not_before = await _shop_row(tx, shop_id)
            counters = await tx.fetchone(
                "SELECT throttled, deferred FROM quota_shops WHERE shop_id = ?", (shop_id,)
            )
            rows = await tx.fetchall(
                "SELECT at, used FROM quota_slots WHERE shop_id = ?", (shop_id,)
            )
        live = [float(at) for at, u in rows if u or at >= now - STALE_AFTER_S]
        return QuotaState(
            shop_id=shop_id,
            heavy_calls=heavy.calls,
            heavy_window_s=heavy.window_s,
            calls_in_window=sum(1 for at, u in rows if u and at > now - heavy.window),
            planned=sum(1 for at, u in rows if not u and at >= now - STALE_AFTER_S),
            next_free_at=earliest_slot(live, now, not_before, heavy),
            not_before=not_before,
            throttled=int(counters[0]) if counters else 0,
            deferred=int(counters[1]) if counters else 0,
        )


class Unlimited:
    """No limiter at all (the benchmark's baseline): every call is granted at once."""

    async def take(self, shop_id: str, ticket: str | None, *, pair: bool = False) -> Slot:
        return Slot(granted=True)

    async def finished(self, shop_id: str, slot: Slot) -> None:
        return None

    async def throttled(self, shop_id: str, retry_after_s: float | None) -> float:
        return retry_after_s if retry_after_s is not None else 1.0

    async def cancel(self, shop_id: str, ticket: str | None) -> None:
        return None


async def _shop_row(tx: Transaction, shop_id: str) -> float:
    await tx.execute(
        "INSERT INTO quota_shops (shop_id, not_before, throttled, deferred) VALUES (?, 0, 0, 0) "
        "ON CONFLICT (shop_id) DO NOTHING",
        (shop_id,),
    )
    row = await tx.fetchone("SELECT not_before FROM quota_shops WHERE shop_id = ?", (shop_id,))
    return float(row[0]) if row else 0.0


async def _insert(tx: Transaction, ticket: str, shop_id: str, at: float, *, used: bool) -> None:
    await tx.execute(
        "INSERT INTO quota_slots (ticket, shop_id, at, used) VALUES (?, ?, ?, ?)",
        (ticket, shop_id, at, 1 if used else 0),
    )


async def _count_deferral(tx: Transaction, shop_id: str) -> None:
    await tx.execute("UPDATE quota_shops SET deferred = deferred + 1 WHERE shop_id = ?", (shop_id,))
