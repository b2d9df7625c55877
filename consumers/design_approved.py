"""design.approved → Fourthwall customization → product from it → product.created.

Every step's result is written to the ledger before the next step starts, so a redelivered
message resumes where the last attempt stopped and never repeats a step that succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from consumers import artwork, template_fit
from consumers.outcomes import Defer, Done, Outcome, Outgoing, Reject, Retry, stable_event_id
from consumers.ports import (
    ArtworkError,
    ArtworkSource,
    Clock,
    Delivery,
    DesignKey,
    DesignLedger,
    DesignRecord,
    DesignState,
    Fourthwall,
    LeaseLost,
    MissingCredentials,
    Quota,
    UpstreamError,
)
from contracts.events import (
    DesignApprovedV1,
    FailureStage,
    ProductCreatedV1,
    ProductFailedV1,
    ProductImage,
)
from contracts.fourthwall import (
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    DesignPipelineImageV1,
    ProductDesignRegionV1,
)
from contracts.timestamps import iso

ALREADY_USED = "CUSTOMIZATION_ALREADY_USED_ERROR"
TEMPLATE_NOT_FOUND = "PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND"
NO_ID = "Fourthwall answered 201 without a productId"
_encoder = msgspec.json.Encoder()


class Failure(msgspec.Struct, frozen=True):
    """Where and why a design stops: recorded in the ledger and published as product.failed."""

    stage: FailureStage
    code: str
    detail: str
    retryable: bool = False
    state: DesignState = "failed"  # or needs_reconciliation


@dataclass(frozen=True)
class Ports:
    fourthwall: Fourthwall
    ledger: DesignLedger
    quota: Quota
    clock: Clock
    busy_delay_s: float = 5.0
    keeps_revisions: frozenset[str] = frozenset()  # shops with supersede_revisions = false
    artwork: ArtworkSource | None = None  # where artwork named by URL is fetched from


def key_of(design: DesignApprovedV1) -> DesignKey:
    return DesignKey(design.shop_id, design.design_id, design.revision)


def key_of_created(created: ProductCreatedV1) -> DesignKey:
    return DesignKey(created.shop_id, created.design_id, created.revision)


def customization_request(
    design: DesignApprovedV1, uploaded: dict[str, str] | None = None
) -> CreateCustomizationRequestV1:
    """The customization call's body; a region's artwork URL is replaced by the image it was
    uploaded as (``uploaded``: URL → image id)."""
    uploaded = uploaded or {}
    return CreateCustomizationRequestV1(
        product_template_id=design.product_template_id,
        regions=[
            ProductDesignRegionV1(
                region=r.region,
                image_id=r.image_id or uploaded[r.image_url or ""],
                placement_strategy=r.placement_strategy,
                placement_id=r.placement_id,
            )
            for r in design.regions
        ],
        colors=design.colors,
        sizes=design.sizes,
    )


def product_request(
    design: DesignApprovedV1, customization_id: str
) -> CreateCustomizationProductRequestV1:
    spec = design.product
    return CreateCustomizationProductRequestV1(
        customization_id=customization_id,
        name=spec.name,
        description=spec.description,
        profit_margin=spec.profit_margin,
        publish_on_create=spec.publish_on_create,
    )


def _images(images: list[DesignPipelineImageV1]) -> list[ProductImage]:
    return [
        ProductImage(
            url=i.url,
            width=i.width,
            height=i.height,
            style=i.style,
            color=i.color,
            size=i.size,
            region=i.region,
        )
        for i in images
    ]


def product_created(
    design: DesignApprovedV1,
    *,
    customization_id: str,
    product_id: str,
    images: list[ProductImage],
    created_at: str,
) -> ProductCreatedV1:
    """The product.created data for ``design`` (also built by an operator's reconcile, where
    Fourthwall's image list is not known: empty)."""
    return ProductCreatedV1(
        shop_id=design.shop_id,
        design_id=design.design_id,
        revision=design.revision,
        customization_id=customization_id,
        product_id=product_id,
        name=design.product.name,
        images=images,
        recommendations=design.recommendations,
        created_at=created_at,
        published=bool(design.product.publish_on_create),
    )


def created_outgoing(created: ProductCreatedV1) -> Outgoing:
    event_id = stable_event_id(
        "product.created", created.shop_id, created.design_id, created.revision
    )
    return Outgoing(data=created, event_id=event_id, subject=created.design_id)


def failed_outgoing(failed: ProductFailedV1) -> Outgoing:
    key = ("product.failed", failed.shop_id, failed.design_id, failed.revision, failed.code)
    return Outgoing(data=failed, event_id=stable_event_id(*key), subject=failed.design_id)


def failed_event(design: DesignApprovedV1, failure: Failure, attempts: int) -> ProductFailedV1:
    return ProductFailedV1(
        shop_id=design.shop_id,
        design_id=design.design_id,
        revision=design.revision,
        stage=failure.stage,
        code=failure.code,
        detail=failure.detail,
        retryable=failure.retryable,
        attempts=attempts,
    )


async def handle(design: DesignApprovedV1, delivery: Delivery, *, ports: Ports) -> Outcome:
    key = key_of(design)
    record = await ports.ledger.claim(key, delivery)
    if record is None:
        return Defer(reason="design_busy", delay_s=ports.busy_delay_s)
    try:
        if record.withdrawn:
            return await _withdrawn(design, record, delivery, ports)
        newest = record.newest_revision or 0
        older = newest > design.revision and design.shop_id not in ports.keeps_revisions
        if older and record.state in ("received", "superseded"):
            # An approval of a revision older than one recorded changes nothing.
            await ports.ledger.record_superseded(key, delivery.token, newest)
            await ports.quota.cancel(design.shop_id, delivery.quota_ticket)
            note = f"revision {design.revision} is older than revision {newest}: nothing done"
            return Done(events=[], note=note)
        return await _advance(design, record, delivery, ports)
    except LeaseLost:
        return Defer(reason="lease_lost", delay_s=ports.busy_delay_s)
    finally:
        await ports.ledger.release(key, delivery.token)


async def _withdrawn(
    design: DesignApprovedV1, record: DesignRecord, delivery: Delivery, ports: Ports
) -> Outcome:
    """A withdrawal covers this revision: the approval loses. Nothing more is made, no
    product.failed, and its planned quota slot is given back. A product it made already is
    the withdrawal's to retire (it holds the same lease in turn)."""
    if record.state not in ("product_created", "published", "withdrawn"):
        await ports.ledger.record_withdrawn(
            record.key, delivery.token, f"approval {delivery.event_id} came after a withdrawal"
        )
    await ports.quota.cancel(design.shop_id, delivery.quota_ticket)
    return Done(events=[], note=f"revision {design.revision} is withdrawn: nothing done")


async def _advance(
    design: DesignApprovedV1, record: DesignRecord, delivery: Delivery, ports: Ports
) -> Outcome:
    if record.state in ("product_created", "published") and record.product_event:
        # Already done: publish the same product.created again (same event id).
        return Done(
            events=[
                created_outgoing(msgspec.json.decode(record.product_event, type=ProductCreatedV1))
            ]
        )
    if record.state == "failed" and delivery.retry_by:
        # An operator asked for this run: resume from the last good step.
        record = await ports.ledger.reopen(record.key, delivery.token, delivery.retry_by)
    if record.state in ("failed", "needs_reconciliation") and record.failed_event:
        failed = msgspec.json.decode(record.failed_event, type=ProductFailedV1)
        return Reject(
            stage=failed.stage,
            code=failed.code,
            detail=failed.detail,
            events=[failed_outgoing(failed)],
        )

    key, token = record.key, delivery.token
    ticket = delivery.quota_ticket
    customization_id = record.customization_id or design.customization_id
    if customization_id is None:
        sketched = await _customize(design, delivery, ports)
        if not isinstance(sketched, Sketched):
            return sketched
        customization_id, ticket = sketched.customization_id, sketched.product_ticket
    asked_before = record.product_requested
    if record.customization_id is None:  # recorded with "product requested", one write
        await ports.ledger.record_customization(
            key, token, customization_id, product_requested=True
        )
    elif not asked_before:
        await ports.ledger.record_product_requested(key, token, requested=True)
    # The slot is taken right before the call: nothing between the grant and the request.
    slot = await ports.quota.take(design.shop_id, ticket)
    if not slot.granted:
        if not asked_before:
            await ports.ledger.record_product_requested(key, token, requested=False)
        return Defer(reason="quota", delay_s=slot.wait_s, quota_ticket=slot.ticket)
    try:
        product = await ports.fourthwall.create_product(
            design.shop_id, product_request(design, customization_id)
        )
    except UpstreamError as exc:
        if exc.code == ALREADY_USED and asked_before:
            return await _needs_reconciliation(design, delivery, customization_id, ports)
        return await _on_error(design, delivery, "product", exc, ports)
    except MissingCredentials as exc:
        return await _on_error(design, delivery, "product", exc, ports)
    finally:
        await ports.quota.finished(design.shop_id, slot)
    if not product.product_id:
        return await _fail(design, delivery, ports, Failure("product", "NO_PRODUCT_ID", NO_ID))
    created = product_created(
        design,
        customization_id=customization_id,
        product_id=product.product_id,
        images=_images(product.images),
        created_at=iso(ports.clock()),
    )
    await ports.ledger.record_product(key, token, product.product_id, _encoder.encode(created))
    return Done(events=[created_outgoing(created)])


class Sketched(msgspec.Struct, frozen=True):
    customization_id: str
    product_ticket: str | None  # the product call's slot, planned right after this one's


async def _customize(
    design: DesignApprovedV1, delivery: Delivery, ports: Ports
) -> Sketched | Outcome:
    """The customization, once the design is known to fit its template: a heavy call."""
    misfit = await _template_misfit(design, ports)
    if misfit is not None:  # refused with no heavy call spent
        await ports.quota.cancel(design.shop_id, delivery.quota_ticket)
        return await _fail(design, delivery, ports, misfit)
    uploaded = await _artwork(design, delivery, ports)
    if not isinstance(uploaded, dict):
        return uploaded
    slot = await ports.quota.take(design.shop_id, delivery.quota_ticket, pair=True)
    if not slot.granted:
        return Defer(reason="quota", delay_s=slot.wait_s, quota_ticket=slot.ticket)
    try:
        sketch = await ports.fourthwall.create_customization(
            design.shop_id, customization_request(design, uploaded)
        )
    except BaseException as exc:
        # The call stops counting as in flight, and no product call follows it.
        await ports.quota.finished(design.shop_id, slot)
        await ports.quota.cancel(design.shop_id, slot.then)
        if isinstance(exc, UpstreamError | MissingCredentials):
            return await _on_error(design, delivery, "customization", exc, ports)
        raise
    if slot.then is None:  # unpaired: say the call answered (a pair's second slot does)
        await ports.quota.finished(design.shop_id, slot)
    return Sketched(sketch.customization_id, slot.then)


async def _artwork(
    design: DesignApprovedV1, delivery: Delivery, ports: Ports
) -> dict[str, str] | Outcome:
    """The image each artwork URL of the design is (uploaded once per content and shop), or
    how the design stops or waits. Before any heavy slot is taken: none is spent on it."""
    if not artwork.urls_of(design):
        return {}
    try:
        if ports.artwork is None:
            raise ArtworkError(
                "ARTWORK_URLS_DISABLED",
                "this service fetches no artwork by URL (ARTWORK_HOSTS is not set)",
                retryable=False,
            )
        return await artwork.image_ids(
            design, source=ports.artwork, ledger=ports.ledger, fourthwall=ports.fourthwall
        )
    except (ArtworkError, UpstreamError, MissingCredentials) as exc:
        return await _artwork_trouble(design, delivery, ports, exc)


async def _artwork_trouble(
    design: DesignApprovedV1,
    delivery: Delivery,
    ports: Ports,
    exc: ArtworkError | UpstreamError | MissingCredentials,
) -> Outcome:
    if isinstance(exc, UpstreamError) and exc.throttled:
        # The upload URL's own limit (20 a minute per shop), not the heavy one: wait, and
        # leave the heavy quota as it is.
        await ports.quota.cancel(design.shop_id, delivery.quota_ticket)
        return Defer(reason="upload_throttled", delay_s=exc.retry_after_s or 60.0)
    if isinstance(exc, MissingCredentials):
        failure = Failure("customization", "MISSING_CREDENTIALS", str(exc))
    else:
        failure = Failure("customization", exc.code, exc.detail, retryable=exc.retryable)
    if failure.retryable and not delivery.final:
        await ports.ledger.record_error(
            key_of(design),
            delivery.token,
            stage="customization",
            code=failure.code,
            detail=failure.detail,
        )
        retry_after = exc.retry_after_s if isinstance(exc, UpstreamError) else None
        return Retry(
            stage="customization",
            code=failure.code,
            detail=failure.detail,
            retry_after_s=retry_after,
        )
    await ports.quota.cancel(design.shop_id, delivery.quota_ticket)  # no heavy call follows
    return await _fail(design, delivery, ports, failure)


async def _template_misfit(design: DesignApprovedV1, ports: Ports) -> Failure | None:
    """Why Fourthwall would refuse the design on its template, or None. A template Fourthwall
    does not know is refused as the customization call would refuse it; any other trouble
    reading the template skips the check (a saving, not a gate: the heavy call judges)."""
    try:
        template = await ports.fourthwall.product_template(
            design.shop_id, design.product_template_id
        )
    except UpstreamError as exc:
        if exc.status == 404 and exc.code == TEMPLATE_NOT_FOUND:
            return Failure("customization", exc.code, exc.detail)
        return None
    except MissingCredentials:
        return None  # the customization call says so, as before
    found = template_fit.misfit(design, template)
    return None if found is None else Failure("customization", found.code, found.detail)


async def _on_error(
    design: DesignApprovedV1,
    delivery: Delivery,
    stage: FailureStage,
    exc: UpstreamError | MissingCredentials,
    ports: Ports,
) -> Outcome:
    if isinstance(exc, MissingCredentials):
        return await _fail(design, delivery, ports, Failure(stage, "MISSING_CREDENTIALS", str(exc)))
    if exc.throttled:
        # Someone else spent the shop's quota: push its next slot back for every replica and
        # come back then. Not a failed attempt.
        wait = await ports.quota.throttled(design.shop_id, exc.retry_after_s)
        return Defer(reason="throttled", delay_s=wait)
    if not exc.retryable or delivery.final:  # permanent, or transient on the last attempt
        failure = Failure(stage, exc.code, exc.detail, retryable=exc.retryable)
        return await _fail(design, delivery, ports, failure)
    await ports.ledger.record_error(
        key_of(design), delivery.token, stage=stage, code=exc.code, detail=exc.detail
    )
    return Retry(stage=stage, code=exc.code, detail=exc.detail, retry_after_s=exc.retry_after_s)


async def _needs_reconciliation(
    design: DesignApprovedV1, delivery: Delivery, customization_id: str, ports: Ports
) -> Outcome:
    detail = (
        f"Fourthwall already built a product from customization {customization_id}, but "
        "its product id was never recorded (the process stopped between Fourthwall's "
        "answer and the ledger write). No second product was created; record the "
        "product id after checking Fourthwall."
    )
    failure = Failure("product", ALREADY_USED, detail, state="needs_reconciliation")
    return await _fail(design, delivery, ports, failure)


async def _fail(
    design: DesignApprovedV1, delivery: Delivery, ports: Ports, failure: Failure
) -> Outcome:
    """Record where the design stops and reject the message with its product.failed."""
    failed = failed_event(design, failure, delivery.attempt)
    await ports.ledger.record_failed(
        key_of(design),
        delivery.token,
        state=failure.state,
        stage=failure.stage,
        code=failure.code,
        detail=failure.detail,
        failed_event=_encoder.encode(failed),
    )
    return Reject(
        stage=failure.stage,
        code=failure.code,
        detail=failure.detail,
        events=[failed_outgoing(failed)],
        exhausted=failure.retryable,
    )


def exhausted(design: DesignApprovedV1, retry: Retry, attempts: int) -> list[Outgoing]:
    """What to publish when an unexpected error outlasted every attempt."""
    failure = Failure(retry.stage, retry.code, retry.detail, retryable=True)
    return [failed_outgoing(failed_event(design, failure, attempts))]
