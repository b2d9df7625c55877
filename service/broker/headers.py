"""Every AMQP header merch-pipeline writes on a message, and how a delivery's headers are read.

A header is named here once; the consume loop, the publisher and the dead-letter tools use these
names and the two Structs below, never a string of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

# What travels with a message between attempts.
ATTEMPT = "x-merch-attempt"  # 1-based attempt this delivery is
DEFERRALS = "x-merch-deferrals"  # times the message was deferred (not failures)
QUOTA_TICKET = "x-merch-quota-ticket"  # the planned quota slot a deferred message waits for
RETRY_BY = "x-merch-retry-by"  # an operator asked for this run (retry or replay)
RETRY_AT = "x-merch-retry-at"  # when they asked
TRACEPARENT = "traceparent"  # W3C trace context, copied from the CloudEvent

# What a failure writes on a message (a retry's copy, a dead letter): see ``Failure``.
REASON = "x-merch-reason"
CODE = "x-merch-code"
DETAIL = "x-merch-detail"
ATTEMPTS = "x-merch-attempts"
FIRST_FAILURE = "x-merch-first-failure"
LAST_FAILURE = "x-merch-last-failure"
SOURCE_QUEUE = "x-merch-source-queue"
ORIGINAL_ROUTING_KEY = "x-merch-original-routing-key"
DEAD_LETTER_ID = "x-merch-dead-letter-id"  # names one dead letter for the admin API

DETAIL_MAX_CHARS = 1000
OPERATOR_MAX_CHARS = 80


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode(errors="replace")
    return value if isinstance(value, str) and value else None


def traceparent(message_headers: Mapping[str, Any] | None) -> str | None:
    """The W3C ``traceparent`` a message carries in its AMQP headers, if any."""
    return _text((message_headers or {}).get(TRACEPARENT))


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _text(value)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """The failure information on a retried or dead-lettered message. Written whole by the
    consume loop; read back by the dead-letter tools, where a message the broker dead-lettered
    itself carries none of it (every field None)."""

    reason: str | None = None
    code: str | None = None
    detail: str | None = None
    attempts: int | None = None
    first_failure: str | None = None
    last_failure: str | None = None
    source_queue: str | None = None
    original_routing_key: str | None = None

    def to_headers(self) -> dict[str, Any]:
        values = {
            REASON: self.reason,
            CODE: self.code,
            DETAIL: self.detail[:DETAIL_MAX_CHARS] if self.detail is not None else None,
            ATTEMPTS: self.attempts,
            FIRST_FAILURE: self.first_failure,
            LAST_FAILURE: self.last_failure,
            SOURCE_QUEUE: self.source_queue,
            ORIGINAL_ROUTING_KEY: self.original_routing_key,
        }
        return {name: value for name, value in values.items() if value is not None}

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> Failure:
        return cls(
            reason=_text(headers.get(REASON)),
            code=_text(headers.get(CODE)),
            detail=_text(headers.get(DETAIL)),
            attempts=_int(headers.get(ATTEMPTS)),
            first_failure=_text(headers.get(FIRST_FAILURE)),
            last_failure=_text(headers.get(LAST_FAILURE)),
            source_queue=_text(headers.get(SOURCE_QUEUE)),
            original_routing_key=_text(headers.get(ORIGINAL_ROUTING_KEY)),
        )


# Written by a failure or by the broker when it dead-lettered the message: an operator's replay
# starts over as a first attempt, so a replayed copy carries none of these.
FAILURE_HEADERS = frozenset(
    {
        REASON,
        CODE,
        DETAIL,
        ATTEMPTS,
        FIRST_FAILURE,
        LAST_FAILURE,
        SOURCE_QUEUE,
        ATTEMPT,
        DEFERRALS,
        QUOTA_TICKET,
        DEAD_LETTER_ID,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
        "x-opt-deaths",
    }
)


class Received(msgspec.Struct, frozen=True, kw_only=True):
    """What the consume loop needs from a delivery's headers, read once."""

    attempt: int = 1
    deferrals: int = 0
    quota_ticket: str | None = None
    retry_by: str | None = None
    first_failure: str | None = None
    original_routing_key: str | None = None


def received(headers: Mapping[str, Any] | None) -> Received:
    """A delivery's headers as the consume loop reads them; whatever a producer put there that
    does not parse counts as absent (a bad attempt header is attempt 1, not a crash)."""
    headers = headers or {}
    retry_by = _text(headers.get(RETRY_BY))
    return Received(
        attempt=max(1, _int(headers.get(ATTEMPT)) or 1),
        deferrals=max(0, _int(headers.get(DEFERRALS)) or 0),
        quota_ticket=_text(headers.get(QUOTA_TICKET)),
        retry_by=retry_by[:OPERATOR_MAX_CHARS] if retry_by else None,
        first_failure=_text(headers.get(FIRST_FAILURE)),
        original_routing_key=_text(headers.get(ORIGINAL_ROUTING_KEY)),
    )
