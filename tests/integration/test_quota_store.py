"""The shared quota store on both real backends, with concurrent takers."""

from __future__ import annotations

import asyncio
import time

import pytest

from consumers.ports import Slot
from service.quota.slots import Limit
from service.quota.store import QuotaStore
from service.store.database import Database
from service.testing.polling import max_in_any_window

pytestmark = pytest.mark.integration

HEAVY = Limit(calls=5, window_s=1.0, margin=0.02)
GENERAL = Limit(calls=100, window_s=10.0, margin=0.02)


async def test_concurrent_takers_never_get_more_than_the_limit_in_any_window(db: Database) -> None:
    # Separate store objects stand in for separate replicas sharing one database.
    replicas = [QuotaStore(db, lambda shop: (HEAVY, GENERAL)) for _ in range(3)]
    granted: list[float] = []

    async def worker(store: QuotaStore) -> None:
        ticket = None
        while True:
            slot = await store.take("hot-shop", ticket)
            if slot.granted:
                granted.append(time.time())
                await store.finished("hot-shop", slot)  # the call's answer, at once here
                return
            ticket = slot.ticket
            await asyncio.sleep(slot.wait_s)

    started = time.time()
    await asyncio.gather(*(worker(replicas[n % 3]) for n in range(20)))
    elapsed = time.time() - started
    assert len(granted) == 20
    assert max_in_any_window(granted, HEAVY.window_s) <= HEAVY.calls
    # and the quota is used: 20 calls at 5 per window need a bit over 3 windows
    assert elapsed < 3 * HEAVY.window + 1.0


async def test_another_shop_is_not_held_back_by_a_backlog(db: Database) -> None:
    store = QuotaStore(db, lambda shop: (HEAVY, GENERAL))
    planned = [await store.take("hot-shop", None) for _ in range(30)]
    assert sum(1 for s in planned if s.granted) == 5
    assert max(s.wait_s for s in planned) > 4 * HEAVY.window_s  # the backlog is spread out
    assert (await store.take("cold-shop", None)).granted


async def test_tickets_keep_their_place_in_line(db: Database) -> None:
    now = [1_000.0]
    one = Limit(calls=1, window_s=1.0, margin=0.0)
    store = QuotaStore(db, lambda shop: (one, GENERAL), clock=lambda: now[0])
    first = await store.take("s", None)
    assert first.granted
    await store.finished("s", first)
    waiting = await store.take("s", None)
    assert not waiting.granted and waiting.ticket
    assert waiting.wait_s == pytest.approx(1.0)
    later = await store.take("s", None)
    assert later.wait_s == pytest.approx(2.0)  # behind the first in line
    now[0] += 0.5  # back too early: same ticket, the rest of the wait
    early = await store.take("s", waiting.ticket)
    assert not early.granted and early.ticket == waiting.ticket
    assert early.wait_s == pytest.approx(0.5)
    now[0] += early.wait_s
    assert (await store.take("s", waiting.ticket)).granted
    assert not (await store.take("s", None)).granted  # a newcomer does not jump the line


async def test_a_call_counts_from_its_grant_until_its_answer(db: Database) -> None:
    """Fourthwall counts the call when the request arrives, anywhere between grant and answer:
    the next call in the window waits for the answer plus the window, not the grant plus it."""
    now = [1_000.0]
    one = Limit(calls=1, window_s=1.0, margin=0.0)
    store = QuotaStore(db, lambda shop: (one, GENERAL), clock=lambda: now[0], call_timeout_s=5)
    slow = await store.take("s", None)
    assert slow.granted
    now[0] += 0.4  # a slow call: its answer comes 0.4 s after the grant
    await store.finished("s", slow)
    assert (await store.take("s", None)).wait_s == pytest.approx(1.0)  # not 0.6

    died = await store.take("t", None)  # granted, and the process died mid-call
    assert died.granted
    for later in (2.0, 5.9):  # no answer: it counts until grant + 5 s, then the window
        now[0] = 1_000.4 + later
        waiting = await store.take("t", None)
        assert not waiting.granted and waiting.wait_s > 0  # it polls, expecting an answer
    now[0] = 1_000.4 + 6.0
    assert (await store.take("t", waiting.ticket)).granted


async def test_a_429_pushes_the_shop_back_for_every_replica(db: Database) -> None:
    first, second = (QuotaStore(db, lambda shop: (HEAVY, GENERAL)) for _ in range(2))
    assert await first.throttled("s", 30.0) == 30.0
    slot = await second.take("s", None)
    assert not slot.granted and slot.wait_s == pytest.approx(30.0, abs=1.0)
    state = await second.state("s")
    assert state.throttled == 1 and state.deferred == 1 and state.planned == 1
    assert state.next_free_at > time.time() + 29


async def test_state_reports_calls_in_the_window(db: Database) -> None:
    store = QuotaStore(db, lambda shop: (HEAVY, GENERAL))
    for _ in range(3):
        await store.take("s", None)
    state = await store.state("s")
    assert (state.calls_in_window, state.heavy_calls, state.planned) == (3, 5, 0)


@pytest.mark.parametrize(("window_s", "latency_s", "floor"), [(60.0, 0.5, 0.95), (1.0, 0.02, 0.9)])
async def test_counting_calls_until_their_answer_keeps_the_quota_used(
    db: Database, window_s: float, latency_s: float, floor: float
) -> None:
    """A hot shop's backlog through the store on a simulated clock, each call answering after
    ``latency_s``: the limit is used at least ``floor`` (the defaults' margin included)."""
    now = [1_000.0]
    heavy = Limit(calls=5, window_s=window_s, margin=0.02, margin_min_s=0.05)
    store = QuotaStore(db, lambda shop: (heavy, GENERAL), clock=lambda: now[0], call_timeout_s=30)
    granted: list[float] = []
    ticket = None
    while len(granted) < 40:
        slot = await store.take("hot", ticket)
        if not slot.granted:
            ticket = slot.ticket
            now[0] += slot.wait_s
            continue
        granted.append(now[0])
        ticket = None
        now[0] += latency_s  # the answer arrives
        await store.finished("hot", slot)
    span = granted[-1] - granted[0]
    rate = len(granted) / (span + window_s) * window_s / heavy.calls
    # wherever in [grant, answer] Fourthwall counts each call, no window holds more than 5:
    # the call 5 places later is granted no earlier than the answer plus the window
    limit = heavy.calls
    assert all(granted[i] >= granted[i - limit] + latency_s + window_s for i in range(limit, 40))
    assert rate >= floor, rate


async def test_a_designs_product_slot_comes_before_the_next_designs_customization(
    db: Database,
) -> None:
    one_a_second = Limit(calls=1, window_s=1.0, margin=0.0)
    store = QuotaStore(db, lambda shop: (one_a_second, GENERAL))
    first = await store.take("shop", None, pair=True)
    second = await store.take("shop", None, pair=True)
    assert first.granted and not second.granted
    planned = dict(await db.fetchall("SELECT ticket, at FROM quota_slots WHERE shop_id = 'shop'"))
    assert first.then is not None and second.ticket is not None and second.then is not None
    assert planned[first.then] < planned[second.ticket] < planned[second.then]
    # the first design's customization failed: its product's slot goes to the next design
    await store.cancel("shop", first.then)
    left = dict(await db.fetchall("SELECT ticket, at FROM quota_slots WHERE shop_id = 'shop'"))
    assert first.then not in left and second.ticket in left


async def test_presenting_a_pairs_second_ticket_finishes_its_first_call(db: Database) -> None:
    store = QuotaStore(db, lambda shop: (HEAVY, GENERAL))
    first = await store.take("shop", None, pair=True)
    assert first.granted and first.then is not None
    done = "SELECT done_at FROM quota_slots WHERE ticket = ?"
    assert await db.fetchone(done, (first.ticket,)) == (None,)  # in flight: it counts
    second = await store.take("shop", first.then)
    assert second.granted
    answered = await db.fetchone(done, (first.ticket,))
    assert answered is not None and answered[0] is not None


async def test_a_long_backlogs_plan_keeps_pace_with_calls_that_take_time(db: Database) -> None:
    """100 designs planned at once (two calls each, 5 per 1 s, every call answering after
    50 ms), each coming back when its ticket says, as a parked design is released: none comes
    back more than twice (its customization's slot, its product's), wherever it is in the line.
    A plan of instant calls would run ahead of the calls by 50 ms a window, and the designs at
    the back would find their slots not yet free and be parked again. (The process has seen a
    call of another shop answer: a plan is made with the calls' duration as last seen.)"""
    now = [1_000.0]
    heavy = Limit(calls=5, window_s=1.0, margin=0.02, margin_min_s=0.05)
    store = QuotaStore(db, lambda shop: (heavy, GENERAL), clock=lambda: now[0], call_timeout_s=30)
    hold, latency = 0.1, 0.05  # waits this short are held in the consumer, not parked
    earlier = await store.take("another-shop", None)
    now[0] += latency
    await store.finished("another-shop", earlier)
    await store.take("another-shop", None)  # sees the answered call: its duration is known
    returns = dict.fromkeys(range(100), 0)
    # (when, order, what, design, ticket, first call): arrivals, and answers of calls made
    events: list[tuple[float, int, str, int, str | None, bool, Slot | None]] = [
        (now[0], d, "arrive", d, None, True, None) for d in range(100)
    ]
    granted: list[float] = []
    order = 100
    while events:
        events.sort(key=lambda e: (e[0], e[1]))
        when, _, what, design, ticket, first_call, made = events.pop(0)
        now[0] = max(now[0], when)
        order += 1
        if what == "answer":
            assert made is not None
            if first_call:  # its product's call right after, on the slot planned for it
                events.append((now[0], order, "arrive", design, made.then, False, None))
            else:
                await store.finished("hot", made)
            continue
        slot = await store.take("hot", ticket, pair=first_call)
        while not slot.granted and slot.wait_s <= hold:  # held in the consumer
            now[0] += slot.wait_s
            slot = await store.take("hot", slot.ticket, pair=first_call)
        if not slot.granted:
            if ticket is not None:  # back after a release: parked again
                returns[design] += 1
            events.append(
                (now[0] + slot.wait_s, order, "arrive", design, slot.ticket, first_call, None)
            )
            continue
        granted.append(now[0])
        events.append((now[0] + latency, order, "answer", design, slot.ticket, first_call, slot))
    assert len(granted) == 200
    assert max(returns.values()) <= 1, sorted(returns.items(), key=lambda kv: -kv[1])[:5]


async def test_a_ticket_planned_before_a_long_outage_is_counted_when_granted(
    db: Database,
) -> None:
    """A design parked before the ledger went away for longer than the sweep keeps slots comes
    back with its old ticket: its grant counts against the window like any other (the sweep of
    old slots in the same decision must not take the presented ticket's row with it)."""
    now = [1_000.0]
    one = Limit(calls=1, window_s=1.0, margin=0.0)
    store = QuotaStore(db, lambda shop: (one, GENERAL), clock=lambda: now[0], call_timeout_s=5)
    assert (await store.take("s", None)).granted
    waiting = await store.take("s", None)
    assert not waiting.granted and waiting.ticket
    now[0] += 300.0  # the ledger was away; the old slots are all past every horizon
    back = await store.take("s", waiting.ticket)
    assert back.granted and back.ticket == waiting.ticket
    newcomer = await store.take("s", None)  # the next call in the same window must wait
    assert not newcomer.granted and newcomer.wait_s > 0
    assert (await store.state("s")).calls_in_window == 1


async def test_a_ticket_in_its_turn_is_held_until_the_window_lets_it_go(db: Database) -> None:
    """A design released from the parking lot at its planned time finds the window still full
    (the call before it answers late): it is held until its grant, not parked again, since each
    release costs the design a delivery; and the grant still waits for that answer + a window."""
    now = [1_000.0]
    one = Limit(calls=1, window_s=1.0, margin=0.0)
    answered_at = 1_001.5  # the call in flight answers half a second after the next slot

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= answered_at and not in_flight_done:
            in_flight_done.append(now[0])
            await store.finished("s", in_flight)

    in_flight_done: list[float] = []
    store = QuotaStore(
        db,
        lambda shop: (one, GENERAL),
        clock=lambda: now[0],
        sleep=sleep,
        max_hold_s=0.2,
        call_timeout_s=5,
    )
    in_flight = await store.take("s", None)
    assert in_flight.granted
    waiting = await store.take("s", None)
    assert not waiting.granted and waiting.ticket
    now[0] += waiting.wait_s  # released at its planned time, the call still unanswered
    back = await store.take("s", waiting.ticket)
    assert back.granted and back.ticket == waiting.ticket
    assert now[0] >= in_flight_done[0] + one.window - 0.01  # the window still holds

    pushed = await store.take("t", None)  # a 429 pushed the shop back: not its turn, parked
    assert pushed.granted
    await store.throttled("t", 30.0)
    later = await store.take("t", None)
    assert not later.granted
    assert not (await store.take("t", later.ticket)).granted
