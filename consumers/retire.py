"""Retiring a product we made: hidden on Fourthwall, its pin scopes deleted, its object taken
out of the shop's Luigi's Box catalogue, recorded, and ``product.withdrawn`` for it.

Every step is idempotent (hiding a hidden product is a no-op, a deleted scope answers 404, a
removed object stays removed), so a retirement cut short is simply done again.
"""

from __future__ import annotations

from consumers.content import content_ref
from consumers.outcomes import Defer, Outcome, Outgoing, Reject, Retry, stable_event_id
from consumers.ports import (
    Delivery,
    Fourthwall,
    LuigisBox,
    MissingCredentials,
    ProductLedger,
    UpstreamError,
)
from contracts.events import FailureStage, ProductWithdrawnV1, WithdrawReason


async def retire(
    *,
    fourthwall: Fourthwall,
    luigisbox: LuigisBox,
    ledger: ProductLedger,
    shop_id: str,
    product_id: str,
    identity: str | None,
    token: str,
    reason: WithdrawReason,
    hide: bool = True,
) -> None:
    """The product's effects undone, in the order that stops its promotion first; the caller
    holds the product's lease (``token``). ``hide`` False: Fourthwall archived it already."""
    for scope_id in (await ledger.scope_ids(product_id)).values():
        await luigisbox.delete_scope(shop_id, scope_id)
    if identity is not None:
        await luigisbox.remove_content(shop_id, [content_ref(identity)])
    try:
        if hide:
            await fourthwall.set_product_state(shop_id, product_id, "HIDDEN")
    except UpstreamError as exc:
        if exc.status != 404:  # archived or gone on Fourthwall: hidden enough
            raise
    await ledger.record_retired(product_id, token, reason)


def withdrawn_outgoing(
    *,
    shop_id: str,
    design_id: str,
    revision: int,
    product_id: str,
    reason: WithdrawReason,
    at: str,
) -> Outgoing:
    data = ProductWithdrawnV1(
        shop_id=shop_id,
        design_id=design_id,
        revision=revision,
        product_id=product_id,
        reason=reason,
        withdrawn_at=at,
    )
    event_id = stable_event_id("product.withdrawn", shop_id, product_id)
    return Outgoing(data=data, event_id=event_id, subject=design_id)


def retire_failed(exc: MissingCredentials | UpstreamError, delivery: Delivery) -> Outcome:
    """An upstream call of a retirement (or a catalogue change) that did not succeed: wait
    when throttled, retry what may pass, dead-letter what will not (an operator replays it
    once fixed). Publishes nothing: no design failed."""
    if isinstance(exc, MissingCredentials):
        return Reject(stage="pins", code="MISSING_CREDENTIALS", detail=str(exc))
    stage: FailureStage = "product" if exc.api == "fourthwall" else "pins"
    if exc.throttled:
        return Defer(reason="throttled", delay_s=exc.retry_after_s or 5.0)
    if not exc.retryable or delivery.final:
        return Reject(stage=stage, code=exc.code, detail=exc.detail, exhausted=exc.retryable)
    return Retry(stage=stage, code=exc.code, detail=exc.detail, retry_after_s=exc.retry_after_s)
