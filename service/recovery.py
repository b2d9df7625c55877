"""What an operator does to a design that went wrong: retry a failed one, reconcile one that
needs reconciliation. Plain functions over the ledger and two ways to reach the broker, passed in.

Retry puts the design's original event back on the design-approved queue as a first attempt,
marked as an operator's: the consumer resumes a failed design from its last good step.
Reconcile records the product id an operator found on Fourthwall and publishes the
product.created the pipeline would have published, so pin scopes follow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import msgspec

from consumers.design_approved import created_outgoing, product_created
from consumers.ports import DesignKey
from contracts.cloudevents import CloudEvent, decode_structured
from contracts.errors import ContractError
from contracts.events import (
    DESIGN_APPROVED,
    PRODUCT_CREATED,
    DesignApprovedV1,
    ProductCreatedV1,
    decode_data,
    make_event,
)
from contracts.timestamps import iso
from service.design_refs import design_ref
from service.errors import NotFound, Refused, Unavailable
from service.store.ledger import Ledger

SendDesign = Callable[[CloudEvent, str], Awaitable[None]]  # onto our queue, as a retry by
PublishEvent = Callable[[CloudEvent, str], Awaitable[None]]  # onto merch.events

RetryAction = Literal["requeued", "republished"]


def _name(key: DesignKey) -> str:
    return design_ref(key)


async def _original_event(ledger: Ledger, key: DesignKey) -> CloudEvent:
    stored = await ledger.design_event(key)
    if stored is None:
        raise Refused(
            f"the ledger holds no copy of design {_name(key)}'s event (it arrived before the "
            "ledger kept them); publish it again with POST /admin/events/design-approved",
        )
    return decode_structured(stored)


async def retry_plan(ledger: Ledger, key: DesignKey) -> tuple[RetryAction, CloudEvent]:
    """What a retry of the design would do and the event it would send, or why it is refused
    (``NotFound``, ``Refused``): a dry run is this alone."""
    record = await ledger.record(key)
    if record is None:
        raise NotFound(f"no design {_name(key)}")
    if record.state == "needs_reconciliation":
        raise Refused(
            "Fourthwall may already hold this design's product: check it there, then "
            f"POST /admin/designs/{_name(key)}/reconcile with its product_id",
            slug="needs-reconciliation",
        )
    if record.state not in ("failed", "product_created"):
        raise Refused(
            f"design {_name(key)} is {record.state}; only a failed design (or one whose "
            "product.created was never confirmed) can be retried",
        )
    # product_created: handled again, the event publishes the recorded product.created (same
    # event id) and nothing else.
    action: RetryAction = "requeued" if record.state == "failed" else "republished"
    return action, await _original_event(ledger, key)


async def retry_design(
    ledger: Ledger, key: DesignKey, *, operator: str, send: SendDesign
) -> RetryAction:
    """Put the design's original event back on the design-approved queue, marked as this
    operator's retry: the consumer, holding the design's lease, takes a failed design back to
    its last good step and runs it from there. Nothing changes here if the broker says no."""
    action, event = await retry_plan(ledger, key)
    try:
        await send(event, operator)
    except Exception as exc:
        raise Unavailable(
            f"the broker did not confirm the retry ({type(exc).__name__}); nothing changed"
        ) from None
    return action


async def reconcile_design(
    ledger: Ledger,
    key: DesignKey,
    product_id: str,
    *,
    operator: str,
    publish: PublishEvent,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    record = await ledger.record(key)
    if record is None:
        raise NotFound(f"no design {_name(key)}")
    original = await _original_event(ledger, key)
    if record.state in ("product_created", "published"):
        if record.product_id != product_id or record.product_event is None:
            raise Refused(f"design {_name(key)} already has product {record.product_id}")
        created = msgspec.json.decode(record.product_event, type=ProductCreatedV1)
    elif record.state == "needs_reconciliation" and record.customization_id:
        try:
            design = decode_data(original, DESIGN_APPROVED)
        except ContractError as exc:  # pragma: no cover - it was valid when it was stored
            raise Refused(f"the stored event no longer decodes: {exc.detail}") from None
        assert isinstance(design, DesignApprovedV1)
        created = product_created(
            design,
            customization_id=record.customization_id,
            product_id=product_id,
            images=[],
            created_at=iso(now()),
        )
        encoded = msgspec.json.encode(created)
        if not await ledger.reconcile(key, product_id, encoded, operator):
            raise Refused(f"design {_name(key)} is being handled right now; try again")
    else:
        raise Refused(
            f"design {_name(key)} is {record.state}; only a design that needs reconciliation "
            "can be reconciled",
        )
    outgoing = created_outgoing(created)
    event = make_event(
        outgoing.data,
        event_id=outgoing.event_id,
        time=iso(now()),
        correlation_id=original.correlationid or original.id,
        traceparent=original.traceparent,
        subject=outgoing.subject,
    )
    try:
        await publish(event, PRODUCT_CREATED.routing_key)
    except Exception:
        raise Unavailable(
            f"product {product_id} is recorded, but the broker did not confirm product.created; "
            "call reconcile again with the same product_id",
        ) from None
    await ledger.mark_published(key)
