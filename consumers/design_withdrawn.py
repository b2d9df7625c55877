"""design.withdrawn → a tombstone in the ledger → every covered revision's product retired →
product.withdrawn for each.

The tombstone is written first and kept: an approval of a covered revision that comes later
(still in a queue, parked for its quota, in a delay queue, or not yet sent) finds it when it
claims its design and ends ``withdrawn`` with nothing made. An approval in flight holds its
revision's lease: the withdrawal waits for it (``Defer``) and then retires what it made. The
product-created consumer finds the tombstone when it claims the product, and pins nothing.

Each revision is handled under its lease, each product under its own, so a retirement never
runs beside a promotion of the same product. Every step is idempotent (see consumers.retire);
a redelivery re-emits ``product.withdrawn`` with the same event id and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from consumers.outcomes import Defer, Done, Outcome, Outgoing, Retry
from consumers.ports import (
    Clock,
    Delivery,
    DesignKey,
    DesignRevision,
    Fourthwall,
    LeaseLost,
    LuigisBox,
    MissingCredentials,
    UpstreamError,
    WithdrawalLedger,
)
from consumers.retire import retire, retire_failed, withdrawn_outgoing
from contracts.events import DesignWithdrawnV1
from contracts.timestamps import iso

RETIRED = ("withdrawn", "superseded")  # product states: already hidden, unpinned, unindexed


@dataclass(frozen=True)
class Ports:
    fourthwall: Fourthwall
    luigisbox: LuigisBox
    ledger: WithdrawalLedger
    clock: Clock
    busy_delay_s: float = 5.0


def covers(withdrawal: DesignWithdrawnV1, revision: int) -> bool:
    return withdrawal.revision is None or revision <= withdrawal.revision


async def handle(withdrawal: DesignWithdrawnV1, delivery: Delivery, *, ports: Ports) -> Outcome:
    await ports.ledger.record_withdrawal(
        withdrawal.shop_id,
        withdrawal.design_id,
        withdrawal.revision,
        withdrawal.reason,
        delivery.event_id,
    )
    revisions = await ports.ledger.revisions(withdrawal.shop_id, withdrawal.design_id)
    events: list[Outgoing] = []
    for revision in revisions:
        if not covers(withdrawal, revision.revision):
            continue
        try:
            outcome = await _withdraw_revision(withdrawal, revision.revision, delivery, ports)
        except LeaseLost:
            outcome = Defer(reason="lease_lost", delay_s=ports.busy_delay_s)
        if not isinstance(outcome, Done):
            return outcome  # what was done stays done: the next delivery skips past it
        events.extend(outcome.events)
    if not events:
        return Done(events=[], note=_nothing_note(withdrawal, revisions))
    return Done(events=events)


def _nothing_note(withdrawal: DesignWithdrawnV1, revisions: list[DesignRevision]) -> str:
    scope = "every revision"
    if withdrawal.revision is not None:
        scope = f"revisions up to {withdrawal.revision}"
    if not revisions:
        return f"no revision recorded yet: {scope} will make nothing when approved"
    return f"{scope} withdrawn: no product was made"


async def _withdraw_revision(
    withdrawal: DesignWithdrawnV1, number: int, delivery: Delivery, ports: Ports
) -> Outcome:
    """One revision, under its lease: its product retired (if it has one), then the revision
    recorded as withdrawn. While an approval holds the lease, come back later."""
    key = DesignKey(withdrawal.shop_id, withdrawal.design_id, number)
    revision = await ports.ledger.hold_revision(key, delivery.token)  # as it is now, leased
    if revision is None:
        return Defer(reason="design_busy", delay_s=ports.busy_delay_s)
    try:
        events: list[Outgoing] = []
        if revision.product_id is not None and revision.product_state != "superseded":
            outcome = await _retire_product(
                withdrawal, revision, revision.product_id, delivery, ports
            )
            if not isinstance(outcome, Done):
                return outcome
            events = outcome.events
        if revision.state != "withdrawn":
            detail = f"event {delivery.event_id}" + (
                f": {withdrawal.reason}" if withdrawal.reason else ""
            )
            await ports.ledger.record_withdrawn(key, delivery.token, detail)
        return Done(events=events)
    finally:
        await ports.ledger.release(key, delivery.token)


async def _retire_product(
    withdrawal: DesignWithdrawnV1,
    revision: DesignRevision,
    product_id: str,
    delivery: Delivery,
    ports: Ports,
) -> Outcome:
    shop_id = withdrawal.shop_id
    record = await ports.ledger.claim_product(
        product_id, shop_id, withdrawal.design_id, delivery.token
    )
    if record is None:  # being promoted right now: its turn comes again
        return Defer(reason="product_busy", delay_s=ports.busy_delay_s)
    try:
        if record.state not in RETIRED:
            await retire(
                fourthwall=ports.fourthwall,
                luigisbox=ports.luigisbox,
                ledger=ports.ledger,
                shop_id=shop_id,
                product_id=product_id,
                identity=record.indexed,
                token=delivery.token,
                reason="withdrawn",
            )
    except (MissingCredentials, UpstreamError) as exc:
        return retire_failed(exc, delivery)
    finally:
        await ports.ledger.finish_product(product_id, delivery.token, None)
    event = withdrawn_outgoing(
        shop_id=shop_id,
        design_id=withdrawal.design_id,
        revision=revision.revision,
        product_id=product_id,
        reason="withdrawn",
        at=iso(ports.clock()),
    )
    return Done(events=[event])


def exhausted(withdrawal: DesignWithdrawnV1, retry: Retry, attempts: int) -> list[Outgoing]:
    """A withdrawal out of attempts is dead-lettered with its reason; it publishes nothing."""
    return []
