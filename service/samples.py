"""Sample design events for the demo, the tests and the benchmarks."""

from __future__ import annotations

import uuid

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DesignApprovedV1,
    DesignRegion,
    DesignWithdrawnV1,
    ProductSpec,
    Recommendations,
    make_event,
)
from contracts.timestamps import now_iso

_TEMPLATES = [
    ("pro_tee", ["front"], ["Black", "White"]),
    ("pro_hoodie", ["front", "back"], ["Black"]),
    ("pro_mug", ["wrap"], None),
]


def sample_design(
    shop_id: str, index: int, run_id: str, customization_id: str | None = None
) -> DesignApprovedV1:
    template, regions, colors = _TEMPLATES[index % len(_TEMPLATES)]
    pins = [f"/p/{run_id}-bestseller-{index % 3}"] if index % 2 == 0 else []
    return DesignApprovedV1(
        shop_id=shop_id,
        design_id=f"dsg-{run_id}-{shop_id}-{index}",
        product_template_id=template,
        regions=[DesignRegion(region=r, image_id=f"img_{run_id}_{index}_{r}") for r in regions],
        colors=colors,
        product=ProductSpec(
            name=f"Sample design {index} for {shop_id}",
            profit_margin=8.5,
            description="Made by the merch-pipeline demo",
        ),
        customization_id=customization_id,
        recommendations=Recommendations(pin_on_items=pins, tags=["demo"]),
    )


def withdrawal(
    design: DesignApprovedV1, *, revision: int | None = None, reason: str | None = None
) -> DesignWithdrawnV1:
    """The withdrawal of ``design`` (up to ``revision``; all of it without)."""
    return DesignWithdrawnV1(
        shop_id=design.shop_id, design_id=design.design_id, revision=revision, reason=reason
    )


def design_event(
    design: DesignApprovedV1 | DesignWithdrawnV1,
    source: str = "urn:merch-pipeline:samples",
    event_id: str | None = None,
) -> CloudEvent:
    event_id = event_id or str(uuid.uuid4())
    event = make_event(
        design,
        event_id=event_id,
        time=now_iso(),
        correlation_id=event_id,
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        subject=design.design_id,
    )
    return CloudEvent(
        **{**{f: getattr(event, f) for f in event.__struct_fields__}, "source": source}
    )
