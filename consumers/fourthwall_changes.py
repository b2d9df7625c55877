"""fourthwall.product.changed → Luigi's Box brought in line with what the shop owner did in
Fourthwall's dashboard. A Fourthwall product has two axes: ``access`` (visibility) and ``state``
(stock); the catalogue object is available only while the product is ``PUBLIC`` and not
``SOLD_OUT``.

- published (``PUBLIC``, in stock): the catalogue object becomes available, so its dormant pins
  show;
- hidden (``HIDDEN``, ``PRIVATE``) or sold out (``SOLD_OUT``): unavailable, the pins kept for
  when it is on sale again;
- renamed or given new images: the object's title and first image change (partial update);
- archived (``ARCHIVED``): the product is retired (scopes deleted, object removed) and
  ``product.withdrawn`` with reason ``archived_upstream`` is published.

Only products the ledger made are touched; another product's change is noted and dropped. A
change older than the newest one applied to the product (by the product's ``updatedAt``) changes
nothing, so deliveries out of order or replayed cannot undo a newer state. A product we retired
ourselves (superseded, withdrawn) stays retired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consumers.content import content_change
from consumers.outcomes import Defer, Done, Outcome, Outgoing, Retry
from consumers.ports import (
    ChangeLedger,
    Clock,
    Delivery,
    Fourthwall,
    LeaseLost,
    LuigisBox,
    MissingCredentials,
    OurProduct,
    ProductRecord,
    UpstreamChange,
    UpstreamError,
)
from consumers.retire import retire, retire_failed, withdrawn_outgoing
from contracts.events import FourthwallProductChangedV1
from contracts.fourthwall import ACCESS_TYPES, ARCHIVED, SOLD_OUT, STOCK_STATES, on_sale
from contracts.timestamps import iso

RETIRED_BY_US = ("superseded", "withdrawn")


@dataclass(frozen=True)
class Ports:
    fourthwall: Fourthwall
    luigisbox: LuigisBox
    ledger: ChangeLedger
    clock: Clock
    busy_delay_s: float = 5.0


def epoch(timestamp: str) -> float:
    """An ISO 8601 time with its offset (Fourthwall's ``updatedAt``) as seconds."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def handle(
    change: FourthwallProductChangedV1, delivery: Delivery, *, ports: Ports
) -> Outcome:
    ours = await ports.ledger.our_product(change.product_id)
    if ours is None or ours.shop_id != change.shop_id:
        return Done(events=[], note="not a product this service made for the shop: ignored")
    at = epoch(change.changed_at)
    if ours.last_change_at is not None and at <= ours.last_change_at:
        return Done(events=[], note="older than the change already applied: ignored")
    record = await ports.ledger.claim_product(
        change.product_id, change.shop_id, ours.design_id, delivery.token
    )
    if record is None:
        return Defer(reason="product_busy", delay_s=ports.busy_delay_s)
    try:
        return await _apply(change, ours, record, at, delivery, ports)
    except LeaseLost:
        return Defer(reason="lease_lost", delay_s=ports.busy_delay_s)
    except (MissingCredentials, UpstreamError) as exc:
        return retire_failed(exc, delivery)
    finally:
        await ports.ledger.finish_product(change.product_id, delivery.token, None)


async def _apply(
    change: FourthwallProductChangedV1,
    ours: OurProduct,
    record: ProductRecord,
    at: float,
    delivery: Delivery,
    ports: Ports,
) -> Outcome:
    access, stock = axes(change)
    applied = UpstreamChange(
        changed_at=at,
        access=access,
        stock=stock,
        name=change.name,
        event_id=change.fourthwall_event_id,
    )
    if record.state in RETIRED_BY_US:
        await ports.ledger.record_change(change.product_id, delivery.token, applied, None)
        return Done(events=[], note=f"the product is {record.state}: it stays retired")
    if access == ARCHIVED:
        return await _archived(change, ours, record, applied, delivery, ports)
    known = access or ours.last_access
    available = on_sale(known, stock) if known else (False if stock == SOLD_OUT else None)
    if record.indexed is not None:  # not yet indexed: the promotion indexes it as it is
        item = content_change(record.indexed, change.name, available, change.image_url)
        await ports.luigisbox.update_content(change.shop_id, item)
    await ports.ledger.record_change(change.product_id, delivery.token, applied, available)
    return Done(events=[])


def axes(change: FourthwallProductChangedV1) -> tuple[str | None, str | None]:
    """The change's (access, stock). An event of the previous version has only ``state``, which
    held whatever that version's door read from the product's ``state.type``: a visibility in
    our sandbox of then, a stock value from the real Fourthwall (its access then unknown)."""
    if change.access is not None:
        return change.access, change.stock
    if change.state in STOCK_STATES:
        return None, change.state
    return (change.state if change.state in ACCESS_TYPES else None), None


async def _archived(
    change: FourthwallProductChangedV1,
    ours: OurProduct,
    record: ProductRecord,
    applied: UpstreamChange,
    delivery: Delivery,
    ports: Ports,
) -> Outcome:
    await retire(
        fourthwall=ports.fourthwall,
        luigisbox=ports.luigisbox,
        ledger=ports.ledger,
        shop_id=change.shop_id,
        product_id=change.product_id,
        identity=record.indexed,
        token=delivery.token,
        reason="archived_upstream",
        hide=False,
    )
    await ports.ledger.record_change(change.product_id, delivery.token, applied, False)
    event: Outgoing = withdrawn_outgoing(
        shop_id=change.shop_id,
        design_id=ours.design_id,
        revision=ours.revision,
        product_id=change.product_id,
        reason="archived_upstream",
        at=iso(ports.clock()),
    )
    return Done(events=[event])


def exhausted(change: FourthwallProductChangedV1, retry: Retry, attempts: int) -> list[Outgoing]:
    """A change out of attempts is dead-lettered with its reason; it publishes nothing."""
    return []
