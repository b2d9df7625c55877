"""10,000 generated message bodies through the real decode-and-dispatch path
(``Consumer.on_message``): no exception escapes, and every message is settled exactly once,
either handled (ack after its events) or dead-lettered (ack after the copy), never dropped."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers import design_approved
from service.broker.consumer import Consumer, RetryPolicy
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.samples import design_event, sample_design
from tests.unit.fakes import FakeFourthwall, FakeLedger, FakeMessage, FakeQuota, RecordingPublisher

VALID = msgspec.json.decode(msgspec.json.encode(design_event(sample_design("shop-1", 0, "fz"))))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutated_envelope(path: list[str], value: Any) -> bytes:
    doc = msgspec.json.decode(msgspec.json.encode(VALID))
    target = doc
    for key in path[:-1]:
        target = target[key] if isinstance(target, dict) and key in target else {}
    if isinstance(target, dict):
        target[path[-1]] = value
    return msgspec.json.encode(doc)


envelope_paths = st.sampled_from(
    [
        ["specversion"],
        ["id"],
        ["type"],
        ["source"],
        ["data"],
        ["data", "shop_id"],
        ["data", "revision"],
        ["data", "regions"],
        ["data", "product"],
        ["data", "product", "name"],
        ["data", "customization_id"],
        ["data", "recommendations"],
        ["data", "colors"],
    ]
)

bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(msgspec.json.encode),
    st.builds(_mutated_envelope, envelope_paths, json_values),
    st.just(msgspec.json.encode(VALID)),
)
content_types = st.sampled_from(
    [
        None,
        "application/cloudevents+json",
        "application/json",
        "text/plain",
        "application/cloudevents+json; charset=utf-8",
    ]
)
headers = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {
            "cloudEvents_specversion": st.sampled_from(["1.0", "0.3", b"1.0"]),
            "cloudEvents_id": st.text(max_size=5),
            "cloudEvents_source": st.just("s"),
            "cloudEvents_type": st.sampled_from(["merch.design.approved.v1", "x"]),
            "x-merch-attempt": st.one_of(st.integers(-3, 9), st.text(max_size=3)),
        }
    ),
)

LOOP = asyncio.new_event_loop()


# Over 20 s on the CI machine: in `make slow` (CI runs it after `make test`).
@pytest.mark.slow
@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies, content_type=content_types, extra=headers)
def test_every_generated_message_is_settled_exactly_once(
    body: bytes, content_type: str | None, extra: dict[str, Any]
) -> None:
    publisher = RecordingPublisher()
    consumer = Consumer(
        names=DESIGN_APPROVED_QUEUE,
        handle=lambda data, delivery: design_approved.handle(
            data,
            delivery,
            ports=design_approved.Ports(
                fourthwall=FakeFourthwall(),
                ledger=FakeLedger(),
                quota=FakeQuota(),
                clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
            ),
        ),
        exhausted=design_approved.exhausted,
        publisher=publisher,  # type: ignore[arg-type]
        policy=RetryPolicy(5, (1.0, 5.0)),
        max_message_bytes=64 * 1024,
    )
    message = FakeMessage(body, content_type, dict(extra))
    LOOP.run_until_complete(consumer.on_message(message))  # type: ignore[arg-type]
    assert message.settled == ["ack"]
    handled = publisher.events == ["product.created"] and not publisher.copies
    dead_lettered = publisher.copies == [DESIGN_APPROVED_QUEUE.dead_letter]
    assert handled or dead_lettered, (publisher.events, publisher.copies)


def setup_module() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def teardown_module() -> None:
    structlog.reset_defaults()
