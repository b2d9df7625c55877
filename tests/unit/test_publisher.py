"""Which events must be routed: a notification nobody subscribes to must not make the incoming
message fail forever; an event our own queue consumes must never silently vanish."""

from __future__ import annotations

from typing import Any

import pytest

from service.broker.publisher import Publisher
from service.samples import design_event, sample_design


class RecordingExchange:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def publish(self, message: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.mark.parametrize(
    ("routing_key", "mandatory"),
    [
        ("design.approved", True),
        ("product.created", True),
        ("pins.created", False),
        ("product.failed", False),
    ],
)
async def test_only_events_of_our_own_queues_are_mandatory(
    routing_key: str, mandatory: bool
) -> None:
    exchange = RecordingExchange()
    publisher = Publisher(channel=None, events=exchange, timeout_s=5)  # type: ignore[arg-type]
    await publisher.publish_event(design_event(sample_design("s", 0, "p")), routing_key)
    assert exchange.calls[0]["mandatory"] is mandatory
    assert exchange.calls[0]["routing_key"] == routing_key
