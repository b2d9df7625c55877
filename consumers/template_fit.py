"""Whether a design fits its Fourthwall product template, checked before a heavy call is spent
on it ("Get product template": ``customizableAreas[].regionId`` and their ``placements[].id``,
``colorVariants[].color.name`` and their ``sizeVariants[].size``).

Only what Fourthwall itself refuses is refused here, as its pages say it: a region that is no
area's ``regionId``, a ``PLACEMENT_ID`` placement the region does not have, and colors or sizes
none of which the template offers ("Values not offered by the product are ignored; the request
is rejected with 400 if none of the supplied colors are available", and the same for sizes and
for their combinations). A template that lists no areas or no variants is not judged on them.
A misfit carries the code Fourthwall would have answered (``DESIGN_PIPELINE_INVALID_REGIONS``,
``CUSTOMIZATION_OPTION_DO_NOT_EXISTS``), so producers, failure groups and runbooks see the same
failure whether it was caught here or upstream; the detail says it was caught here.
"""

from __future__ import annotations

import msgspec

from contracts.events import DesignApprovedV1
from contracts.fourthwall import ProductTemplateV1

INVALID_REGIONS = "DESIGN_PIPELINE_INVALID_REGIONS"
NO_SUCH_OPTION = "CUSTOMIZATION_OPTION_DO_NOT_EXISTS"


class Misfit(msgspec.Struct, frozen=True):
    code: str  # Fourthwall's own, for the same refusal
    detail: str


def misfit(design: DesignApprovedV1, template: ProductTemplateV1) -> Misfit | None:
    """Why Fourthwall would refuse ``design`` on ``template``, or None."""
    where = f"checked against product template {template.product_id} before any heavy call: "
    regions = _regions(design, template)
    if regions is not None:
        return Misfit(INVALID_REGIONS, where + regions)
    variants = _variants(design, template)
    return None if variants is None else Misfit(NO_SUCH_OPTION, where + variants)


def _regions(design: DesignApprovedV1, template: ProductTemplateV1) -> str | None:
    areas = [a for a in template.customizable_areas if a.region_id and a.available is not False]
    if not areas:
        return None
    known = sorted({a.region_id for a in areas if a.region_id})
    for region in design.regions:
        if region.region not in known:
            return f"region {region.region!r} is not one of the template's: {', '.join(known)}"
        if region.placement_strategy != "PLACEMENT_ID":
            continue
        placements = sorted(
            {p.id for a in areas if a.region_id == region.region for p in a.placements}
        )
        if region.placement_id not in placements:
            return (
                f"placement {region.placement_id!r} is not one of region {region.region!r}'s: "
                f"{', '.join(placements) or 'none'}"
            )
    return None


def _variants(design: DesignApprovedV1, template: ProductTemplateV1) -> str | None:
    offered = [v for v in template.color_variants if v.available is not False]
    if not offered:
        return None
    colors = [v for v in offered if design.colors is None or v.color.name in design.colors]
    if not colors:
        names = ", ".join(sorted({v.color.name for v in offered}))
        return f"none of the colors {design.colors} is offered (the template has: {names})"
    if design.sizes is None:
        return None
    sizes = {s.size for v in colors for s in v.size_variants if s.available is not False} & set(
        design.sizes
    )
    if not sizes and any(v.size_variants for v in offered):
        return f"none of the sizes {design.sizes} is offered in the colors asked for"
    return None
