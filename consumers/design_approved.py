"""design.approved → Fourthwall customization → product from it → product.created."""

from __future__ import annotations

from dataclasses import dataclass

from consumers.outcomes import Done, Outcome, Outgoing, Reject, Retry, stable_event_id
from consumers.pin_rules import iso
from consumers.ports import Clock, Fourthwall, MissingCredentials, UpstreamError
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


@dataclass(frozen=True)
class Ports:
    fourthwall: Fourthwall
    clock: Clock


def customization_request(design: DesignApprovedV1) -> CreateCustomizationRequestV1:
    return CreateCustomizationRequestV1(
        product_template_id=design.product_template_id,
        regions=[
            ProductDesignRegionV1(
                region=r.region,
                image_id=r.image_id,
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


def failed_event(
    design: DesignApprovedV1,
    *,
    stage: FailureStage,
    code: str,
    detail: str,
    retryable: bool,
    attempts: int,
) -> Outgoing:
    data = ProductFailedV1(
        shop_id=design.shop_id,
        design_id=design.design_id,
        revision=design.revision,
        stage=stage,
        code=code,
        detail=detail,
        retryable=retryable,
        attempts=attempts,
    )
    key = ("product.failed", design.shop_id, design.design_id, design.revision, code)
    return Outgoing(data=data, event_id=stable_event_id(*key), subject=design.design_id)


def _on_error(
    design: DesignApprovedV1, stage: FailureStage, exc: Exception, attempt: int
) -> Outcome:
    if isinstance(exc, MissingCredentials):
        code, detail = "MISSING_CREDENTIALS", str(exc)
        return Reject(
            stage=stage,
            code=code,
            detail=detail,
            events=[
                failed_event(
                    design, stage=stage, code=code, detail=detail, retryable=False, attempts=attempt
                )
            ],
        )
    assert isinstance(exc, UpstreamError)
    if exc.retryable:
        return Retry(stage=stage, code=exc.code, detail=exc.detail, retry_after_s=exc.retry_after_s)
    return Reject(
        stage=stage,
        code=exc.code,
        detail=exc.detail,
        events=[
            failed_event(
                design,
                stage=stage,
                code=exc.code,
                detail=exc.detail,
                retryable=False,
                attempts=attempt,
            )
        ],
    )


async def handle(design: DesignApprovedV1, attempt: int, *, ports: Ports) -> Outcome:
    customization_id = design.customization_id
    if customization_id is None:
        try:
            sketch = await ports.fourthwall.create_customization(
                design.shop_id, customization_request(design)
            )
        except (UpstreamError, MissingCredentials) as exc:
            return _on_error(design, "customization", exc, attempt)
        customization_id = sketch.customization_id
    try:
        product = await ports.fourthwall.create_product(
            design.shop_id, product_request(design, customization_id)
        )
    except (UpstreamError, MissingCredentials) as exc:
        return _on_error(design, "product", exc, attempt)
    if not product.product_id:
        code, detail = "NO_PRODUCT_ID", "Fourthwall answered 201 without a productId"
        return Reject(
            stage="product",
            code=code,
            detail=detail,
            events=[
                failed_event(
                    design,
                    stage="product",
                    code=code,
                    detail=detail,
                    retryable=False,
                    attempts=attempt,
                )
            ],
        )
    created = ProductCreatedV1(
        shop_id=design.shop_id,
        design_id=design.design_id,
        revision=design.revision,
        customization_id=customization_id,
        product_id=product.product_id,
        name=design.product.name,
        images=_images(product.images),
        recommendations=design.recommendations,
        created_at=iso(ports.clock()),
    )
    event_id = stable_event_id("product.created", design.shop_id, design.design_id, design.revision)
    return Done(events=[Outgoing(data=created, event_id=event_id, subject=design.design_id)])


def exhausted(design: DesignApprovedV1, retry: Retry, attempts: int) -> list[Outgoing]:
    """What to publish when a transient failure outlasted every attempt."""
    return [
        failed_event(
            design,
            stage=retry.stage,
            code=retry.code,
            detail=retry.detail,
            retryable=True,
            attempts=attempts,
        )
    ]
