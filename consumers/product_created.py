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
from consumers.pin_rules import PinRules, fence_tag, plan_scopes, product_tag
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
# From this many scopes still to create for one product, one bulk call and one listing take the
# place of a create each (a design pinning many items; a backfill).
BULK_MIN_SCOPES = 5


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
    planned = [
        _Planned(rule_key, request, product.product_id)
        for rule_key, request in plan_scopes(product, ports.rules, template, ports.clock())
    ]
    todo = [p for p in planned if p.rule_key not in done.scopes]
    try:
        made, asked, settling = await _bulk(product, todo, done, delivery, ports)
    except (MissingCredentials, UpstreamError) as exc:
        return _upstream_failed(product, exc, delivery, ports)
    scopes: list[PinScope] = []
    for plan in planned:
        if plan.rule_key in done.scopes:
            scopes.append(msgspec.json.decode(done.scopes[plan.rule_key], type=PinScope))
            continue
        if settling and plan.rule_key not in made:
            continue  # looked for again on the next attempt (below)
        try:
            created = made.get(plan.rule_key) or await _scope_of(
                product, plan, plan.rule_key in asked, delivery, ports
            )
        except (MissingCredentials, UpstreamError) as exc:
            return _upstream_failed(product, exc, delivery, ports)
        scope = _scope(created.id, plan.request)
        await ports.ledger.record_scope(
            product.product_id, delivery.token, plan.rule_key, created.id, _encoder.encode(scope)
        )
        scopes.append(scope)
    if settling:
        # Bulk-made scopes the listing did not show yet: what was found is recorded, the rest
        # is looked for again after a pause before any is created one by one.
        return Defer(reason="scopes_settling", delay_s=ports.busy_delay_s)
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


class _Planned:
    """One scope to have: its rule, and the request with the product's and the rule's tags."""

    def __init__(self, rule_key: str, request: ScopeRequest, product_id: str) -> None:
        self.rule_key = rule_key
        self.tag = fence_tag(product_id, rule_key)
        tags = [*(request.tags or []), product_tag(product_id), self.tag]
        self.request = msgspec.structs.replace(request, tags=tags)


async def _bulk(
    product: ProductCreatedV1,
    todo: list[_Planned],
    done: ProductRecord,
    delivery: Delivery,
    ports: Ports,
) -> tuple[dict[str, ScopeResponse], set[str], bool]:
    """With ``BULK_MIN_SCOPES`` or more scopes still to have: the ones never asked for are
    created in one bulk call (recorded as asked for first), then one listing by the product's
    tag finds every scope of the product Luigi's Box holds, by its fence tag. Answers the
    scopes found by rule, the rules asked for by now, and whether some just bulk-made are not
    listed yet (the listing may lag the create: they are looked for again on the next attempt;
    what is still not found then, e.g. kept out as a conflict, is made one by one)."""
    asked = set(done.requested)
    if len(todo) < BULK_MIN_SCOPES:
        return {}, asked, False
    fresh = [plan for plan in todo if plan.rule_key not in asked]
    for plan in fresh:
        await ports.ledger.record_scope_requested(product.product_id, delivery.token, plan.rule_key)
    asked.update(plan.rule_key for plan in fresh)
    if fresh:
        await ports.luigisbox.create_scopes(product.shop_id, [plan.request for plan in fresh])
    listed = await ports.luigisbox.scopes_tagged(product.shop_id, product_tag(product.product_id))
    by_tag = {tag: scope for scope in listed for tag in scope.tags or []}
    made = {plan.rule_key: by_tag[plan.tag] for plan in todo if plan.tag in by_tag}
    return made, asked, bool(fresh) and len(made) < len(todo)


async def _scope_of(
    product: ProductCreatedV1, plan: _Planned, asked: bool, delivery: Delivery, ports: Ports
) -> ScopeResponse:
    """The scope for (product, rule): the one an earlier attempt made if its answer was lost,
    else a new one, recorded as asked for before the call."""
    if asked:
        found = await ports.luigisbox.find_scope(product.shop_id, plan.tag)
        if found is not None:
            return found
    else:
        await ports.ledger.record_scope_requested(product.product_id, delivery.token, plan.rule_key)
    return await ports.luigisbox.create_scope(product.shop_id, plan.request)


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
