"""product.created → the product's object in the shop's Luigi's Box catalogue → one pin scope
per pin rule → pins.created.

The catalogue comes first: Luigi's Box leaves items it does not know out of recommendations, so
pins of a product not yet indexed would show nothing. The content update is a full replacement
of the object, so redoing it is harmless; once done it is recorded and not redone.

Each scope is recorded per (product, rule) as soon as Luigi's Box created it, so a redelivered
or duplicated product.created creates no scope twice. Before the call the ledger records that
the scope was asked for, and the scope carries a tag naming (product, rule): when the answer was
lost (the process died, the connection dropped, the ledger write failed), the next attempt
finds the scope by its tag and adopts it instead of creating a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from consumers.content import content_object, is_available
from consumers.outcomes import Defer, Done, Outcome, Outgoing, Reject, Retry, stable_event_id
from consumers.pin_rules import PinRules, fence_tag, plan_scopes
from consumers.ports import (
    Clock,
    Delivery,
    Fourthwall,
    LeaseLost,
    LuigisBox,
    MissingCredentials,
    ProductLedger,
    ProductRecord,
    UpstreamError,
)
from consumers.retire import retire, withdrawn_outgoing
from contracts.events import PinScope, PinsCreatedV1, ProductCreatedV1, ProductFailedV1
from contracts.luigisbox import ScopeRequest, ScopeResponse
from contracts.timestamps import iso

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Ports:
    luigisbox: LuigisBox
    ledger: ProductLedger
    clock: Clock
    rules: PinRules
    identity_template_for: dict[str, str]  # shop_id → item identity template override
    busy_delay_s: float = 5.0
    product_url_for: dict[str, str] | None = None  # shop_id → product_url_template
    fourthwall: Fourthwall | None = None  # to hide a superseded product
    keeps_revisions: frozenset[str] = frozenset()  # shops with supersede_revisions = false

    def supersedes(self, shop_id: str) -> bool:
        return self.fourthwall is not None and shop_id not in self.keeps_revisions


def failed_outgoing(
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


def _scope(created_id: str, request: ScopeRequest) -> PinScope:
    pin = request.pin_definitions[0]
    return PinScope(
        scope_id=created_id,
        model=request.model,
        target_type=request.target_type,
        target_identity=request.target_identity,
        position=pin.position,
        pin_identity=pin.pin_identity,
        active_from=pin.active_from,
        active_to=pin.active_to,
    )


async def handle(product: ProductCreatedV1, delivery: Delivery, *, ports: Ports) -> Outcome:
    done = await ports.ledger.claim_product(
        product.product_id, product.shop_id, product.design_id, delivery.token
    )
    if done is None:
        return Defer(reason="product_busy", delay_s=ports.busy_delay_s)
    state: str | None = None
    try:
        if done.state in ("superseded", "withdrawn"):  # retired already
            return Done(events=[])
        if done.withdrawn:  # the design was withdrawn: its withdrawal retires the product
            return Done(events=[], note="the design is withdrawn: not promoted")
        if ports.supersedes(product.shop_id) and (done.newest_revision or 0) > product.revision:
            # A newer revision of the design has its product: this one is retired, not promoted.
            itself = [(product.revision, product.product_id)]
            return await _retire_products(product, itself, delivery, ports, [], done.indexed)
        outcome = await _pin(product, done, delivery, ports)
        if isinstance(outcome, Done):
            state = "pins_created"
            if ports.supersedes(product.shop_id) and product.revision > 1:
                return await _retire_older(product, outcome, delivery, ports)
        elif isinstance(outcome, Reject):
            state = "failed"
        return outcome
    except LeaseLost:
        return Defer(reason="lease_lost", delay_s=ports.busy_delay_s)
    finally:
        await ports.ledger.finish_product(product.product_id, delivery.token, state)


async def _pin(
    product: ProductCreatedV1, done: ProductRecord, delivery: Delivery, ports: Ports
) -> Outcome:
    template = ports.identity_template_for.get(product.shop_id, ports.rules.item_identity_template)
    if done.indexed is None:
        url_template = (ports.product_url_for or {}).get(product.shop_id)
        item = content_object(product, template, url_template)
        try:
            await ports.luigisbox.index_content(product.shop_id, item)
        except (MissingCredentials, UpstreamError) as exc:
            return _upstream_failed(product, exc, delivery, ports)
        await ports.ledger.record_content(
            product.product_id, delivery.token, item.identity, is_available(item)
        )
    scopes: list[PinScope] = []
    for rule_key, planned in plan_scopes(product, ports.rules, template, ports.clock()):
        if rule_key in done.scopes:
            scopes.append(msgspec.json.decode(done.scopes[rule_key], type=PinScope))
            continue
        tag = fence_tag(product.product_id, rule_key)
        request = msgspec.structs.replace(planned, tags=[*(planned.tags or []), tag])
        try:
            created = await _scope_of(product, rule_key, request, tag, done, delivery, ports)
        except (MissingCredentials, UpstreamError) as exc:
            return _upstream_failed(product, exc, delivery, ports)
        scope = _scope(created.id, request)
        await ports.ledger.record_scope(
            product.product_id, delivery.token, rule_key, created.id, _encoder.encode(scope)
        )
        scopes.append(scope)
    data = PinsCreatedV1(
        shop_id=product.shop_id,
        design_id=product.design_id,
        product_id=product.product_id,
        scopes=scopes,
    )
    event_id = stable_event_id("pins.created", product.shop_id, product.product_id)
    return Done(events=[Outgoing(data=data, event_id=event_id, subject=product.design_id)])


async def _retire_older(
    product: ProductCreatedV1, pinned: Done, delivery: Delivery, ports: Ports
) -> Outcome:
    """After a newer revision's product is promoted: retire the design's older products."""
    older = [
        (p.revision, p.product_id)
        for p in await ports.ledger.design_products(product.shop_id, product.design_id)
        if p.revision < product.revision and p.state not in ("superseded", "withdrawn")
    ]
    return await _retire_products(product, older, delivery, ports, pinned.events, None)


async def _retire_products(
    product: ProductCreatedV1,
    retiring: list[tuple[int, str]],
    delivery: Delivery,
    ports: Ports,
    events: list[Outgoing],
    own_identity: str | None,
) -> Outcome:
    """Retire each (revision, product id) of ``product``'s design, holding each one's lease
    (the product being handled is held already: ``own_identity`` is its catalogue identity);
    ``product.withdrawn`` for each, after ``events``."""
    assert ports.fourthwall is not None
    withdrawn = list(events)
    for revision, product_id in retiring:
        held = product_id == product.product_id
        record = (
            None
            if held
            else await ports.ledger.claim_product(
                product_id, product.shop_id, product.design_id, delivery.token
            )
        )
        if not held and record is None:  # being promoted right now: its turn comes again
            return Defer(reason="product_busy", delay_s=ports.busy_delay_s)
        try:
            identity = own_identity if record is None else record.indexed
            await retire(
                fourthwall=ports.fourthwall,
                luigisbox=ports.luigisbox,
                ledger=ports.ledger,
                shop_id=product.shop_id,
                product_id=product_id,
                identity=identity,
                token=delivery.token,
                reason="superseded",
            )
        except (MissingCredentials, UpstreamError) as exc:
            return _upstream_failed(product, exc, delivery, ports)
        finally:
            if not held:
                await ports.ledger.finish_product(product_id, delivery.token, None)
        withdrawn.append(
            withdrawn_outgoing(
                shop_id=product.shop_id,
                design_id=product.design_id,
                revision=revision,
                product_id=product_id,
                reason="superseded",
                at=iso(ports.clock()),
            )
        )
    return Done(events=withdrawn)


def _upstream_failed(
    product: ProductCreatedV1,
    exc: MissingCredentials | UpstreamError,
    delivery: Delivery,
    ports: Ports,
) -> Outcome:
    """A Luigi's Box call (content or scope) that did not succeed: wait when throttled, retry
    what may pass, fail the promotion on what will not."""
    if isinstance(exc, MissingCredentials):
        return _reject(product, "MISSING_CREDENTIALS", str(exc), delivery, retryable=False)
    if exc.throttled:  # rate limited: wait as told, not a failed attempt
        return Defer(reason="throttled", delay_s=exc.retry_after_s or ports.busy_delay_s)
    if not exc.retryable or delivery.final:
        return _reject(product, exc.code, exc.detail, delivery, retryable=exc.retryable)
    return Retry(stage="pins", code=exc.code, detail=exc.detail, retry_after_s=exc.retry_after_s)


async def _scope_of(
    product: ProductCreatedV1,
    rule_key: str,
    request: ScopeRequest,
    tag: str,
    done: ProductRecord,
    delivery: Delivery,
    ports: Ports,
) -> ScopeResponse:
    """The scope for (product, rule): the one an earlier attempt made if its answer was lost,
    else a new one, recorded as asked for before the call."""
    if rule_key in done.requested:
        found = await ports.luigisbox.find_scope(product.shop_id, tag)
        if found is not None:
            return found
    else:
        await ports.ledger.record_scope_requested(product.product_id, delivery.token, rule_key)
    return await ports.luigisbox.create_scope(product.shop_id, request)


def _reject(
    product: ProductCreatedV1, code: str, detail: str, delivery: Delivery, *, retryable: bool
) -> Reject:
    return Reject(
        stage="pins",
        code=code,
        detail=detail,
        exhausted=retryable,
        events=[
            failed_outgoing(
                product, code=code, detail=detail, retryable=retryable, attempts=delivery.attempt
            )
        ],
    )


def exhausted(product: ProductCreatedV1, retry: Retry, attempts: int) -> list[Outgoing]:
    return [
        failed_outgoing(
            product, code=retry.code, detail=retry.detail, retryable=True, attempts=attempts
        )
    ]
