"""What a handler decided. The consume loop maps each outcome to broker actions in one place.

- ``Done``: publish ``events`` (with confirms), then ack.
- ``Retry``: a transient failure; redeliver later through a delay queue, or give up after the
  last attempt (the consumer's ``exhausted`` function says what to publish then).
- ``Reject``: a permanent failure; publish ``events`` (``product.failed``), dead-letter, ack.
- ``Defer``: not now, and not a failure (another delivery holds the design, or the shop has no
  quota slot yet): redeliver after ``delay_s`` without spending an attempt.
"""

from __future__ import annotations

import uuid

import msgspec

from contracts.events import EventData, FailureStage

_NAMESPACE = uuid.UUID("6f1c9f0e-2d4b-4b7e-9a51-2f0c8f3e7a10")


def stable_event_id(*parts: object) -> str:
    """An event id derived from what the event is about, so a redelivery republishes the same id
    and downstream consumers can recognise the duplicate."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    data: EventData
    event_id: str
    subject: str | None = None


class Done(msgspec.Struct, frozen=True, kw_only=True):
    events: list[Outgoing]
    note: str | None = None  # why nothing was done, when that is the outcome (logged)


class Retry(msgspec.Struct, frozen=True, kw_only=True):
    stage: FailureStage
    code: str
    detail: str
    retry_after_s: float | None = None


class Reject(msgspec.Struct, frozen=True, kw_only=True):
    stage: FailureStage
    code: str
    detail: str
    events: list[Outgoing] = []
    exhausted: bool = False  # a transient failure on the last attempt, not a permanent one


class Defer(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    delay_s: float
    quota_ticket: str | None = None  # the planned slot to present when the message is back


Outcome = Done | Retry | Reject | Defer
