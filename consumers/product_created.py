"""product.created → one Luigi's Box pin scope per pin rule → pins.created."""

from __future__ import annotations

from dataclasses import dataclass

from consumers.outcomes import Done, Outcome, Outgoing, Reject, Retry, stable_event_id
from consumers.pin_rules import PinRules, item_identity, plan_scopes
from consumers.ports import Clock, LuigisBox, MissingCredentials, UpstreamError
from contracts.events import PinScope, PinsCreatedV1, ProductCreatedV1, ProductFailedV1


@dataclass(frozen=True)
class Ports:
    luigisbox: LuigisBox
    clock: Clock
    rules: PinRules
    identity_template_for: dict[str, str]  # shop_id → item identity template override


def failed_event(
    product: ProductCreatedV1, *, code: str, detail: str, retryable: bool, attempts: int
) -> Outgoing:
    data = ProductFailedV1(
        shop_id=product.shop_id,
        design_id=product.design_id,
        revision=product.revision,
        stage="pins",
        code=code,
        detail=detail,
        retryable=retryable,
        attempts=attempts,
        product_id=product.product_id,
    )
    event_id = stable_event_id("product.failed", product.shop_id, product.product_id, "pins", code)
    return Outgoing(data=data, event_id=event_id, subject=product.design_id)


async def handle(product: ProductCreatedV1, attempt: int, *, ports: Ports) -> Outcome:
    template = ports.identity_template_for.get(product.shop_id, ports.rules.item_identity_template)
    scopes: list[PinScope] = []
    for _rule_key, request in plan_scopes(product, ports.rules, template, ports.clock()):
        try:
            created = await ports.luigisbox.create_scope(product.shop_id, request)
        except MissingCredentials as exc:
            code, detail = "MISSING_CREDENTIALS", str(exc)
            return Reject(
                stage="pins",
                code=code,
                detail=detail,
                events=[
                    failed_event(
                        product, code=code, detail=detail, retryable=False, attempts=attempt
                    )
                ],
            )
        except UpstreamError as exc:
            if exc.retryable:
                return Retry(
                    stage="pins", code=exc.code, detail=exc.detail, retry_after_s=exc.retry_after_s
                )
            return Reject(
                stage="pins",
                code=exc.code,
                detail=exc.detail,
                events=[
                    failed_event(
                        product, code=exc.code, detail=exc.detail, retryable=False, attempts=attempt
                    )
                ],
            )
        pin = request.pin_definitions[0]
        scopes.append(
            PinScope(
                scope_id=created.id,
                model=request.model,
                target_type=request.target_type,
                target_identity=request.target_identity,
                position=pin.position,
                pin_identity=pin.pin_identity,
                active_from=pin.active_from,
                active_to=pin.active_to,
            )
        )
    data = PinsCreatedV1(
        shop_id=product.shop_id,
        design_id=product.design_id,
        product_id=product.product_id,
        scopes=scopes,
    )
    event_id = stable_event_id("pins.created", product.shop_id, product.product_id)
    return Done(events=[Outgoing(data=data, event_id=event_id, subject=product.design_id)])


def exhausted(product: ProductCreatedV1, retry: Retry, attempts: int) -> list[Outgoing]:
    return [
        failed_event(
            product, code=retry.code, detail=retry.detail, retryable=True, attempts=attempts
        )
    ]


__all__ = ["Ports", "exhausted", "handle", "item_identity"]
