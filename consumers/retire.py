"""Retiring a product we made: hidden on Fourthwall, its pin scopes deleted, its object taken
out of the shop's Luigi's Box catalogue, recorded, and ``product.withdrawn`` for it.

Every step is idempotent (hiding a hidden product is a no-op, a deleted scope answers 404, a
removed object stays removed), so a retirement cut short is simply done again.
"""

from __future__ import annotations

from consumers.content import content_ref
from consumers.outcomes import Outgoing, stable_event_id
from consumers.ports import Fourthwall, LuigisBox, ProductLedger, UpstreamError
from contracts.events import ProductWithdrawnV1, WithdrawReason


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
) -> None:
    """The product's effects undone, in the order that stops its promotion first; the caller
    holds the product's lease (``token``)."""
    for scope_id in (await ledger.scope_ids(product_id)).values():
        await luigisbox.delete_scope(shop_id, scope_id)
    if identity is not None:
        await luigisbox.remove_content(shop_id, [content_ref(identity)])
    try:
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
