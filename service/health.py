"""Readiness: the broker is connected and every consumer this process runs is attached."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from service.broker.link import BrokerLink
from service.broker.switch import ConsumerHealth, ConsumerSwitch


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    broker_connected: bool
    consumers: list[ConsumerHealth]


def readiness(link: BrokerLink, switches: Sequence[ConsumerSwitch]) -> Readiness:
    """Ready once the broker is connected and every consumer attached. An operator's pause
    leaves the pod ready: it was asked to stop taking messages, it is not broken."""
    connected = link.connected()
    consumers = [switch.health(connected) for switch in switches]
    ready = connected and all(c.attached for c in consumers)
    return Readiness(ready=ready, broker_connected=connected, consumers=consumers)
