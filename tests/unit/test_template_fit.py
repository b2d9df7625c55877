"""A design is checked against its product template before any heavy call: what Fourthwall
would refuse is refused with no quota spent, with the reason; what it would take goes on."""

from __future__ import annotations

import msgspec
import pytest

from consumers import design_approved, template_fit
from consumers.outcomes import Done, Reject
from contracts.events import DesignApprovedV1, DesignRegion, ProductSpec
from contracts.fourthwall import ProductTemplateV1
from tests.documented import documented
from tests.unit.fakes import FakeFourthwall, FakeLedger, FakeQuota, upstream_error
from tests.unit.test_handlers import delivery, ports

TEMPLATE = msgspec.convert(
    documented("fourthwall_get_product_template")["response"], ProductTemplateV1
)  # the documented example: region `front` (placement `stickerSlotOne`), Navy Blue in L


def _design(**overrides: object) -> DesignApprovedV1:
    fields: dict[str, object] = dict(
        shop_id="shop-1",
        design_id="d-1",
        product_template_id=TEMPLATE.product_id,
        regions=[DesignRegion(region="front", image_id="img_1")],
        product=ProductSpec(name="Tee"),
    )
    fields.update(overrides)
    return DesignApprovedV1(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({}, None),
        ({"colors": ["Navy Blue", "Pink"], "sizes": ["L", "XS"]}, None),  # the rest is ignored
        ({"regions": [DesignRegion(region="Front", image_id="i")]}, "region 'Front'"),
        (
            {"regions": [DesignRegion(region="back", image_id="i")]},
            "region 'back' is not one of the template's",
        ),
        (
            {
                "regions": [
                    DesignRegion(
                        region="front",
                        image_id="i",
                        placement_strategy="PLACEMENT_ID",
                        placement_id="stickerSlotOne",
                    )
                ]
            },
            None,
        ),
        (
            {
                "regions": [
                    DesignRegion(
                        region="front",
                        image_id="i",
                        placement_strategy="PLACEMENT_ID",
                        placement_id="slot9",
                    )
                ]
            },
            "placement 'slot9'",
        ),
        ({"colors": ["Pink"]}, "none of the colors"),
        ({"sizes": ["XS"]}, "none of the sizes"),
    ],
)
def test_only_what_fourthwall_would_refuse_is_a_misfit(
    overrides: dict[str, object], why: str | None
) -> None:
    found = template_fit.misfit(_design(**overrides), TEMPLATE)
    assert (found is None) if why is None else (found is not None and why in found.detail), found
    if found is not None:  # the code Fourthwall would answer for the same design
        regional = "region" in why or "placement" in why
        assert found.code == (
            template_fit.INVALID_REGIONS if regional else template_fit.NO_SUCH_OPTION
        )
        assert "before any heavy call" in found.detail


async def test_a_misfit_fails_the_design_with_no_heavy_call_and_frees_its_slot() -> None:
    fourthwall, quota = FakeFourthwall(template=TEMPLATE), FakeQuota()
    bad = _design(regions=[DesignRegion(region="sleeve", image_id="img_1")])
    outcome = await design_approved.handle(
        bad, delivery(), ports=ports(fourthwall, FakeLedger(), quota)
    )
    assert isinstance(outcome, Reject)
    assert (outcome.stage, outcome.code) == ("customization", "DESIGN_PIPELINE_INVALID_REGIONS")
    assert "region 'sleeve'" in outcome.detail and not outcome.exhausted
    assert not fourthwall.customizations and not fourthwall.products
    assert quota.taken == [] and quota.cancelled == [None]  # its planned slot (none here) freed


async def test_an_unknown_template_is_refused_as_fourthwall_would_and_trouble_skips_the_check() -> (
    None
):
    gone = FakeFourthwall(
        template=upstream_error("PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND", False, 404)
    )
    refused = await design_approved.handle(_design(), delivery(), ports=ports(gone))
    assert isinstance(refused, Reject) and refused.code == "PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND"
    assert not gone.customizations
    down = FakeFourthwall(template=upstream_error("SERVICE_UNAVAILABLE", True, 503))
    done = await design_approved.handle(_design(), delivery(), ports=ports(down))
    assert isinstance(done, Done) and len(down.customizations) == 1


async def test_a_pre_sketched_design_reads_no_template() -> None:
    fourthwall = FakeFourthwall(template=TEMPLATE)
    sketched = _design(customization_id="cst_9", regions=[DesignRegion(region="x", image_id="i")])
    outcome = await design_approved.handle(sketched, delivery(), ports=ports(fourthwall))
    assert isinstance(outcome, Done) and fourthwall.template_reads == []
