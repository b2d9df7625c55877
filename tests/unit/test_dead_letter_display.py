"""How a dead letter is shown to an operator: any body, any header, safely."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from service.broker.dead_letters import BODY_PREVIEW_BYTES, describe, plain, show_body


def test_a_json_body_is_shown_parsed() -> None:
    shown = show_body(b'{"data": {"design_id": "d-1"}}')
    assert (shown.encoding, shown.content, shown.truncated) == (
        "json",
        {"data": {"design_id": "d-1"}},
        False,
    )


def test_text_that_is_not_json_is_shown_as_text() -> None:
    shown = show_body(b"{not json")
    assert (shown.encoding, shown.content, shown.size) == ("text", "{not json", 9)


def test_bytes_that_are_not_utf8_are_shown_as_base64() -> None:
    shown = show_body(b"\xff\xfe\x00binary")
    assert shown.encoding == "base64"
    assert base64.b64decode(shown.content) == b"\xff\xfe\x00binary"


def test_a_large_body_is_cut_without_splitting_a_character() -> None:
    body = ("é" * BODY_PREVIEW_BYTES).encode()  # two bytes each: the cut falls inside one
    shown = show_body(body)
    assert shown.truncated and shown.encoding == "text"
    assert shown.size == len(body)
    assert len(shown.content.encode()) <= BODY_PREVIEW_BYTES
    assert set(shown.content) == {"é"}


def test_large_json_is_cut_as_text_not_parsed() -> None:
    body = msgspec.json.encode({"x": "a" * (BODY_PREVIEW_BYTES * 2)})
    shown = show_body(body)
    assert shown.encoding == "text" and shown.truncated


def test_header_values_become_json() -> None:
    moment = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    headers = {
        "bytes": b"caf\xc3\xa9",
        "when": moment,
        "x-death": [{"count": 1, "reason": b"delivery_limit", "time": moment}],
        "decimal": Decimal("1.5"),
        "flag": True,
    }
    shown = plain(headers)
    assert shown == {
        "bytes": "café",
        "when": "2026-11-22T10:00:00Z",
        "x-death": [{"count": 1, "reason": "delivery_limit", "time": "2026-11-22T10:00:00Z"}],
        "decimal": "1.5",
        "flag": True,
    }
    msgspec.json.encode(shown)  # and it encodes


@dataclass
class _Message:
    body: bytes
    headers: dict[str, Any]
    message_id: str | None = None
    type: str | None = None
    content_type: str | None = None


def test_a_message_the_broker_dead_lettered_says_so() -> None:
    # Retried twice through a delay queue (expired), then past the delivery limit: the newest
    # x-death entry comes first.
    headers = {
        "x-death": [
            {"queue": "merch-pipeline.design-approved", "reason": b"delivery_limit", "count": 1},
            {"queue": "merch-pipeline.design-approved.retry.1s", "reason": b"expired", "count": 2},
        ],
        "x-first-death-reason": b"expired",
    }
    shown = describe(_Message(b"{}", headers))  # type: ignore[arg-type]
    assert shown.reason == "delivery_limit"
    assert shown.id.startswith("sha256:")  # no id of ours, no message_id: named by its body
    again = describe(_Message(b"{}", headers))  # type: ignore[arg-type]
    assert again.id == shown.id


def test_our_dead_letters_are_named_by_our_id_and_reason() -> None:
    headers = {
        "x-merch-dead-letter-id": b"abc123",
        "x-merch-reason": "permanent_failure",
        "x-merch-attempts": 2,
        "x-first-death-reason": "expired",
    }
    shown = describe(_Message(b"{}", headers, message_id="evt-1"))  # type: ignore[arg-type]
    assert (shown.id, shown.reason, shown.attempts) == ("abc123", "permanent_failure", 2)
