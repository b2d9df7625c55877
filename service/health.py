"""Readiness: the broker is connected, the ledger answers, and every consumer this process runs
is attached."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from service.broker.link import BrokerLink
from service.broker.switch import ConsumerHealth, ConsumerSwitch
from service.ledger_watch import LedgerWatch


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    broker_connected: bool
    consumers: list[ConsumerHealth]
    ledger_available: bool = True
    ledger_error: str | None = None  # why the ledger is thought away, while it is


def readiness(
    link: BrokerLink, switches: Sequence[ConsumerSwitch], ledger: LedgerWatch | None = None
) -> Readiness:
    """Ready once the broker is connected, the ledger answers and every consumer is attached.
    An operator's pause leaves the pod ready: it was asked to stop taking messages, it is not
    broken."""
    connected = link.connected()
    consumers = [switch.health(connected) for switch in switches]
    available = ledger is None or ledger.available
    ready = connected and available and all(c.attached for c in consumers)
    return Readiness(
        ready=ready,
        broker_connected=connected,
        consumers=consumers,
        ledger_available=available,
        ledger_error=None if ledger is None else ledger.error,
    )
