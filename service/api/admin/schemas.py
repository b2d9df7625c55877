"""The admin API's request and response bodies, and its path parameter types."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from service.broker.dead_letters import DeadLetter, DeadLetterQueue
from service.broker.switch import ConsumerHealth
from service.quota.store import QuotaState
from service.store.ledger import ContentRow, DesignRow, Step, Withdrawal
from service.store.parking import Parked

__all__ = [
    "ConsumerHealth",
    "DeadLetter",
    "DeadLetterQueue",
    "DesignDetail",
    "DesignPage",
    "Discarded",
    "ListedDesign",
    "PublishedEvent",
    "QuotaState",
    "ReconcileRequest",
    "Replayed",
    "RetryResult",
]


class ListedDesign(DesignRow, frozen=True, kw_only=True):
    """A design as the API shows it: its row, and how to name it in a URL."""

    ref: str  # for /admin/designs/{ref}, whatever the ids contain
    link: str  # /admin/designs/{ref}


class DesignPage(msgspec.Struct, frozen=True):
    items: list[ListedDesign]
    next_cursor: str | None


ProductStatus = Literal["active", "superseded", "withdrawn"]


class ProductView(msgspec.Struct, frozen=True, kw_only=True):
    """The design's product: its state (``superseded`` once a newer revision's product retired
    it), its catalogue object in Luigi's Box (None until indexed; ``removed_at`` once retired)
    and its pin scopes by rule key (as recorded when made)."""

    product_id: str
    # pins_pending, pins_created, failed, superseded, withdrawn (None: not yet handled)
    state: str | None
    content: ContentRow | None
    scopes: dict[str, str]
    revision: int | None = None
    # active (promoted or being promoted), superseded (a newer revision's product retired
    # it), withdrawn (its design was withdrawn)
    status: ProductStatus = "active"


class DesignDetail(msgspec.Struct, frozen=True):
    design: ListedDesign
    steps: list[Step]
    # while it waits for its shop's quota: parked in the ledger until due_at
    parked: list[Parked] = msgspec.field(default_factory=list)
    product: ProductView | None = None  # this revision's
    products: list[ProductView] = msgspec.field(default_factory=list)  # every revision's
    withdrawal: Withdrawal | None = None  # the design's tombstone, once withdrawn


class PublishedEvent(msgspec.Struct, frozen=True):
    id: str
    routing_key: str


class RetryResult(msgspec.Struct, frozen=True):
    action: Literal["requeued", "republished"]
    design: ListedDesign


class ReconcileRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The product Fourthwall holds for the design, as the operator found it there."""

    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Replayed(msgspec.Struct, frozen=True):
    queue: str
    to: str
    replayed: list[str]


class Discarded(msgspec.Struct, frozen=True):
    queue: str
    discarded: int
