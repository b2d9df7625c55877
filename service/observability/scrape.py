"""``/metrics`` at scrape time: gauges are read now (readiness, designs by state, dead-letter
depths); counters and histograms were kept as things happened."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import structlog

from consumers.ports import LedgerUnavailable
from service.broker import dead_letters
from service.broker.link import BrokerLink
from service.broker.switch import ConsumerSwitch
from service.broker.topology import QUEUES
from service.health import Readiness
from service.observability.metrics import TOP_WAITING_SHOPS, Metrics
from service.store.app_tokens import AppTokenStore
from service.store.ledger import Ledger
from service.store.parking import ParkingLot

log = structlog.get_logger("merch_pipeline.metrics")


async def render_metrics(
    metrics: Metrics,
    ledger: Ledger,
    link: BrokerLink,
    switches: Sequence[ConsumerSwitch],
    readiness: Callable[[], Readiness],
    parking: ParkingLot,
    app_grants: AppTokenStore | None = None,
) -> bytes:
    state = readiness()
    metrics.report_statements(ledger.db.tally.statements)
    metrics.broker_connected.set(1 if state.broker_connected else 0)
    for consumer in state.consumers:
        metrics.in_flight.labels(consumer.name).set(consumer.in_flight)
    for switch in switches:
        metrics.report_paused(switch.name, switch.paused_seconds())
    if state.ledger_available:  # while it is away, the last counts stand (and ledger_up is 0)
        with contextlib.suppress(LedgerUnavailable):
            for design_state, count in (await ledger.count_by_state()).items():
                metrics.designs.labels(design_state).set(count)
            parked, due = await parking.counts()
            metrics.parked.set(parked)
            metrics.parked_due.set(due)
            metrics.report_waiting(await parking.longest_waits(TOP_WAITING_SHOPS))
            if app_grants is not None:
                metrics.app_paused.set(len(await app_grants.refused()))
    if state.broker_connected:
        try:
            async with link.channel() as channel:
                for names in QUEUES.values():
                    depth = await dead_letters.depth(channel, names)
                    metrics.dead_letters.labels(names.dead_letter).set(depth.messages)
        except Exception as exc:  # a scrape must not fail because the broker hiccuped
            log.warning("metrics.dead_letters_unread", error=type(exc).__name__)
    return metrics.render()
