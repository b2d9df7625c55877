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
from collections import deque
from collections.abc import Awaitable, Callable

import msgspec

from consumers.ports import LedgerUnavailable, Slot
from service.quota.slots import Limit, earliest_slot, wait_for_window
from service.store.database import Database, Row, Transaction

# A planned slot whose holder has not come back this long after its time is abandoned (its
# message failed, was a duplicate, or its process died): it stops holding capacity.
STALE_AFTER_S = 30.0
TOLERANCE_S = 0.002
IN_FLIGHT_POLL_S = 0.02  # how soon a call in flight is expected to have answered
MAX_PLANNED_DURATION_S = 2.0  # a slow call is not planned for longer than this
ANSWER_SLACK_S = 5.0  # an answer comes within the HTTP timeout, give or take this
SWEEP_EVERY_S = 10.0  # how often a process deletes a shop's slots that can no longer count
PAIRED_SUFFIX = ".then"


def _first_of_pair(ticket: str | None) -> str | None:
    """The ticket of the first call of a pair, when ``ticket`` is its second's."""
    if ticket is None or not ticket.endswith(PAIRED_SUFFIX):
        return None
    return ticket.removesuffix(PAIRED_SUFFIX)


def _unique(rows: list[Row], ticket: str | None) -> list[Row]:
    """Each slot once: ``ticket``'s own row, read on its own, may also be among the latest."""
    if ticket is None:
        return rows
    seen = False
    kept = []
    for row in rows:
        if row[0] == ticket:
            if seen:
                continue
            seen = True
        kept.append(row)
    return kept


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
    parked: int = 0  # the shop's designs parked until their slot
    next_release_at: float | None = None  # when the first of them is due


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
        self._swept: dict[str, float] = {}  # shop → when this process last swept its old slots
        self._durations: deque[float] = deque(maxlen=50)  # recent calls' durations, any shop

    async def take(self, shop_id: str, ticket: str | None, *, pair: bool = False) -> Slot:
        """A granted slot, or how long to wait and the ticket to come back with. Waits that add
        up to no more than ``max_hold_s`` are waited out here rather than through the broker
        (a slot due in a moment, a call in flight about to answer). A ticket whose planned time
        has come is in its turn: only the calls already in the window keep it, and sending it
        back to the parking lot would cost its design another delivery (at most 3 in all: its
        first and each release), so it is held until they have answered (within the HTTP
        timeout) and aged out of the window. With ``pair``, a request without a ticket also
        plans the next call's slot right after its own (``Slot.then``)."""
        slot, in_turn = await self._take_once(shop_id, ticket, pair)
        held = 0.0
        while not slot.granted and held + slot.wait_s <= self._hold_limit(shop_id, in_turn):
            await self.sleep(slot.wait_s)
            held += slot.wait_s
            slot, in_turn = await self._take_once(shop_id, slot.ticket, pair)
        return slot

    def _hold_limit(self, shop_id: str, in_turn: bool) -> float:
        if not in_turn:
            return self.max_hold_s
        return max(self.max_hold_s, self.limits_for(shop_id)[0].window + self.call_timeout_s)

    async def finished(self, shop_id: str, slot: Slot) -> None:
        """The call's answer arrived. While the ledger is away it stays counted to its grant +
        timeout, which only costs capacity."""
        if slot.ticket is None:
            return
        now = self.clock()
        with contextlib.suppress(LedgerUnavailable):
            granted = await self.db.fetchone(
                "UPDATE quota_slots SET done_at = ? WHERE ticket = ? AND used = 1 RETURNING at",
                (now, slot.ticket),
            )
            if granted is not None:
                self._observed(now - float(granted[0]))

    async def cancel(self, shop_id: str, ticket: str | None) -> None:
        """Give back a planned slot, and the one planned right after it for the same design."""
        if ticket is not None:
            then = paired(ticket) or ticket
            await self.db.execute(
                "DELETE FROM quota_slots WHERE ticket IN (?, ?) AND shop_id = ? AND used = 0",
                (ticket, then, shop_id),
            )

    async def _take_once(
        self, shop_id: str, ticket: str | None, pair: bool = False
    ) -> tuple[Slot, bool]:
        """One decision, and whether the ticket presented is in its turn (see ``take``)."""
        heavy, general = self.limits_for(shop_id)
        longest = max(heavy.window, general.window)
        async with self.db.transaction() as tx:
            now = self.clock()
            decided = await self._decide(tx, shop_id, ticket, pair, now, (heavy, general))
            # After the decision's own write: a ticket planned before a long ledger outage is
            # past the horizon, and sweeping first would delete the row being granted.
            await self._sweep(tx, shop_id, now, longest)
            return decided

    async def _decide(
        self,
        tx: Transaction,
        shop_id: str,
        ticket: str | None,
        pair: bool,
        now: float,
        limits: tuple[Limit, Limit],
    ) -> tuple[Slot, bool]:
        """One decision on the locked shop: grant, move ``ticket`` to its wait, or plan; and
        whether ``ticket`` is in its turn: its planned time has come (the releaser hands it
        back up to half of ``max_hold_s`` early) and no 429 pushed the shop back."""
        heavy, general = limits
        longest = max(heavy.window, general.window)
        not_before, rows = await self._locked_shop(tx, shop_id, now, longest, ticket, heavy.calls)
        first = _first_of_pair(ticket)  # presented: the pair's first call has answered
        first_at = next((float(r[1]) for r in rows if first and r[0] == first), None)
        if first_at is not None:
            self._observed(now - first_at)
        made: list[tuple[float, float | None]] = []
        planned: list[float] = []
        for t, at, used, done in rows:
            if not used:
                planned.append(float(at))
            else:
                made.append((float(at), now if t == first and done is None else done))
        # Planning assumes a call in flight answers soon, and a planned call lasts as long
        # as the shop's recent calls did (it counts until its answer: a plan of instant
        # calls would run ahead of the calls, and the designs come back too early);
        # granting waits for the answer.
        # With fewer times than the limit (a pair adds one), every slot is free now and
        # neither the durations nor the calls made change that.
        full = len(rows) + 1 >= heavy.calls
        duration = self._call_duration(made) if full else IN_FLIGHT_POLL_S
        planned = [at + duration for at in planned]
        live = (
            [self._expected_end(at, done, now) for at, done in made] + planned if full else planned
        )
        mine = next((r for r in reversed(rows) if r[0] == ticket and not r[2]), None)
        window_wait = self._window_wait(made, now, limits, not_before)
        if mine is None or ticket is None:
            plan = (live, not_before, heavy, window_wait, pair, duration)
            return await self._plan(tx, shop_id, now, *plan), False
        in_turn = float(mine[1]) - now <= self.max_hold_s and not_before - now <= TOLERANCE_S
        then = paired(ticket) if pair else None
        wait = max(float(mine[1]) - now, window_wait)
        granted = wait <= TOLERANCE_S
        # One statement: this slot granted (or moved to its wait), the first call finished.
        slot_at = now if granted else now + wait
        await tx.execute(
            "UPDATE quota_slots SET "
            "used = CASE WHEN ticket = ? THEN ? ELSE used END, "
            "at = CASE WHEN ticket = ? THEN ? ELSE at END, "
            "done_at = CASE WHEN ticket = ? THEN COALESCE(done_at, ?) ELSE done_at END "
            "WHERE ticket IN (?, ?)",
            (ticket, 1 if granted else 0, ticket, slot_at, first, now, ticket, first),
        )
        if granted:
            return Slot(granted=True, ticket=ticket, then=then), in_turn
        await _count_deferral(tx, shop_id)
        return Slot(granted=False, wait_s=wait, ticket=ticket, then=then), in_turn

    async def _plan(
        self,
        tx: Transaction,
        shop_id: str,
        now: float,
        live: list[float],
        not_before: float,
        heavy: Limit,
        window_wait: float,
        pair: bool,
        duration: float,
    ) -> Slot:
        """A new ticket: granted now, or planned at the shop's next free slot; with ``pair``,
        the design's next call planned right after it, in the same statement."""
        at = earliest_slot(live, now, not_before, heavy)
        ticket = uuid.uuid4().hex
        granted = at <= now + TOLERANCE_S and window_wait <= TOLERANCE_S
        at = now if granted else at
        values: list[tuple[str, str, float, int]] = [(ticket, shop_id, at, 1 if granted else 0)]
        then = paired(ticket) if pair else None
        if then is not None:
            next_at = earliest_slot([*live, at + duration], max(now, at), not_before, heavy)
            values.append((then, shop_id, next_at, 0))
        marks = ", ".join("(?, ?, ?, ?)" for _ in values)
        await tx.execute(
            f"INSERT INTO quota_slots (ticket, shop_id, at, used) VALUES {marks}",
            [v for row in values for v in row],
        )
        if granted:
            return Slot(granted=True, ticket=ticket, then=then)
        await _count_deferral(tx, shop_id)
        return Slot(granted=False, wait_s=max(at - now, window_wait), ticket=ticket, then=then)

    async def _locked_shop(
        self,
        tx: Transaction,
        shop_id: str,
        now: float,
        longest: float,
        ticket: str | None = None,
        latest: int = 0,
    ) -> tuple[float, list[Row]]:
        """The shop's ``not_before`` and the slots a decision needs, with the shop's decisions
        serialised. The slots: the calls that may still count in a window, the ``latest``
        planned slots (the next free slot follows from the last ``heavy.calls`` times alone),
        and ``ticket``'s own: so a decision costs the same however long the shop's backlog.
        SQLite's transaction has the one writer, so one statement; PostgreSQL locks the shop's
        row first and reads the slots in a second statement (a statement's snapshot is taken
        before it waits for a lock, so one that waited would miss what the holder wrote)."""
        slots = (
            "SELECT ticket, at, used, done_at FROM quota_slots WHERE shop_id = ? AND used = 1 "
            "AND at > ? AND COALESCE(done_at, at + ?) > ? "
            "UNION ALL SELECT * FROM (SELECT ticket, at, used, done_at FROM quota_slots "
            "WHERE shop_id = ? AND used = 0 AND at >= ? ORDER BY at DESC LIMIT ?) AS latest "
            "UNION ALL SELECT ticket, at, used, done_at FROM quota_slots "
            "WHERE ticket = ? AND shop_id = ? AND used = 0"
        )
        counting_since = now - longest
        params = (
            *(shop_id, counting_since - self.call_timeout_s - ANSWER_SLACK_S),
            *(self.call_timeout_s, counting_since),
            *(shop_id, now - STALE_AFTER_S, latest),
            *(ticket, shop_id),
        )
        if self.db.dialect == "postgresql":
            shop = await _shop_locked(tx, shop_id)
            return shop, _unique(await tx.fetchall(slots, params), ticket)
        sql = (
            "SELECT s.not_before, q.ticket, q.at, q.used, q.done_at FROM quota_shops s "
            f"LEFT JOIN ({slots}) AS q ON 1 = 1 WHERE s.shop_id = ?"
        )
        found = await tx.fetchall(sql, (*params, shop_id))
        if not found:  # the shop's first call: its row, then the same question
            await _new_shop(tx, shop_id)
            found = await tx.fetchall(sql, (*params, shop_id))
        not_before = float(found[0][0]) if found else 0.0
        return not_before, _unique([r[1:] for r in found if r[1] is not None], ticket)

    async def _sweep(self, tx: Transaction, shop_id: str, now: float, longest: float) -> None:
        """Forget the shop's slots no window can count any more, once every SWEEP_EVERY_S."""
        if now - self._swept.get(shop_id, 0.0) < SWEEP_EVERY_S:
            return
        self._swept[shop_id] = now
        horizon = now - max(longest, STALE_AFTER_S) - self.call_timeout_s
        await tx.execute("DELETE FROM quota_slots WHERE shop_id = ? AND at < ?", (shop_id, horizon))

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
        if len(made) < min(limit.calls for limit in limits):  # no window can be full
            return 0.0 if not_before - now <= TOLERANCE_S else not_before - now
        counted = [done if done is not None else at + self.call_timeout_s for at, done in made]
        expected = [self._expected_end(at, done, now) for at, done in made]  # planning
        blocked = max([wait_for_window(counted, now, limit) for limit in limits])
        estimate = max([wait_for_window(expected, now, limit) for limit in limits])
        if max(blocked, not_before - now) <= TOLERANCE_S:
            return 0.0
        if blocked <= TOLERANCE_S:
            return not_before - now
        return max(estimate, not_before - now, IN_FLIGHT_POLL_S)

    def _call_duration(self, made: list[tuple[float, float | None]]) -> float:
        """How long a planned call will count: as long as the shop's answered calls in view
        took (the longest, at most ``MAX_PLANNED_DURATION_S``); for a shop with none in view,
        as long as the calls this process saw lately (any shop's: one Fourthwall);
        ``IN_FLIGHT_POLL_S`` before it has seen any."""
        taken = [done - at for at, done in made if done is not None and done >= at]
        if taken:
            return min(max(taken), MAX_PLANNED_DURATION_S)
        return max(self._durations) if self._durations else IN_FLIGHT_POLL_S

    def _observed(self, duration: float) -> None:
        """A call of this process answered after ``duration``."""
        if duration >= 0:
            self._durations.append(min(duration, MAX_PLANNED_DURATION_S))

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
        async with self.db.transaction() as tx:
            now = self.clock()
            await self._locked_shop(tx, shop_id, now, heavy.window)
            await tx.execute(
                "UPDATE quota_shops SET not_before = CASE WHEN not_before > ? THEN not_before "
                "ELSE ? END, throttled = throttled + 1 WHERE shop_id = ?",
                (now + wait, now + wait, shop_id),
            )
        return wait

    async def state(self, shop_id: str) -> QuotaState:
        heavy, _ = self.limits_for(shop_id)
        async with self.db.transaction() as tx:
            now = self.clock()
            not_before, _ = await self._locked_shop(tx, shop_id, now, heavy.window)
            counters = await tx.fetchone(
                "SELECT throttled, deferred FROM quota_shops WHERE shop_id = ?", (shop_id,)
            )
            rows = await tx.fetchall(
                "SELECT at, used FROM quota_slots WHERE shop_id = ?", (shop_id,)
            )
            parked = await tx.fetchone(
                "SELECT COUNT(*), MIN(due_at) FROM parked_messages WHERE shop_id = ?", (shop_id,)
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
            parked=int(parked[0]) if parked else 0,
            next_release_at=float(parked[1]) if parked and parked[1] is not None else None,
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


async def _shop_locked(tx: Transaction, shop_id: str) -> float:
    """PostgreSQL: the shop's row, locked until the transaction ends (made on its first call)."""
    sql = "SELECT not_before FROM quota_shops WHERE shop_id = ? FOR UPDATE"
    row = await tx.fetchone(sql, (shop_id,))
    if row is None:
        await _new_shop(tx, shop_id)
        row = await tx.fetchone(sql, (shop_id,))
    return float(row[0]) if row else 0.0


async def _new_shop(tx: Transaction, shop_id: str) -> None:
    await tx.execute(
        "INSERT INTO quota_shops (shop_id, not_before, throttled, deferred) VALUES (?, 0, 0, 0) "
        "ON CONFLICT (shop_id) DO NOTHING",
        (shop_id,),
    )


async def _count_deferral(tx: Transaction, shop_id: str) -> None:
    await tx.execute("UPDATE quota_shops SET deferred = deferred + 1 WHERE shop_id = ?", (shop_id,))
