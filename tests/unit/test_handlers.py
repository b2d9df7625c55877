from __future__ import annotations

from datetime import UTC, datetime

from consumers import design_approved, product_created
from consumers.outcomes import Done, Reject, Retry
from consumers.pin_rules import PinRules
from consumers.ports import MissingCredentials
from contracts.events import (
    DesignApprovedV1,
    DesignRegion,
    PinsCreatedV1,
    ProductCreatedV1,
    ProductFailedV1,
    ProductSpec,
    Recommendations,
)
from tests.unit.fakes import FakeFourthwall, FakeLuigisBox, upstream_error

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def design(**overrides: object) -> DesignApprovedV1:
    fields: dict[str, object] = dict(
        shop_id="shop-1",
        design_id="d-1",
        product_template_id="pro_tee",
        regions=[DesignRegion(region="front", image_id="img_1")],
        product=ProductSpec(name="Tee", profit_margin=5.0),
        recommendations=Recommendations(pin_on_items=["/p/9"]),
    )
    fields.update(overrides)
    return DesignApprovedV1(**fields)  # type: ignore[arg-type]


def ports(fourthwall: FakeFourthwall) -> design_approved.Ports:
    return design_approved.Ports(fourthwall=fourthwall, clock=lambda: NOW)


async def test_customization_then_product_then_product_created() -> None:
    fourthwall = FakeFourthwall()
    outcome = await design_approved.handle(design(), 1, ports=ports(fourthwall))
    assert isinstance(outcome, Done)
    assert fourthwall.customizations[0].product_template_id == "pro_tee"
    assert fourthwall.products[0].customization_id == "cst_1"
    assert fourthwall.products[0].profit_margin == 5.0
    created = outcome.events[0].data
    assert isinstance(created, ProductCreatedV1)
    assert (created.product_id, created.customization_id) == ("prd_1", "cst_1")
    assert created.recommendations == Recommendations(pin_on_items=["/p/9"])


async def test_event_with_customization_id_makes_one_call() -> None:
    fourthwall = FakeFourthwall()
    outcome = await design_approved.handle(
        design(customization_id="cst_given", regions=[]), 1, ports=ports(fourthwall)
    )
    assert isinstance(outcome, Done)
    assert fourthwall.customizations == []
    assert fourthwall.products[0].customization_id == "cst_given"


async def test_redelivery_publishes_the_same_event_id() -> None:
    first = await design_approved.handle(design(), 1, ports=ports(FakeFourthwall()))
    second = await design_approved.handle(design(), 2, ports=ports(FakeFourthwall()))
    assert isinstance(first, Done) and isinstance(second, Done)
    assert first.events[0].event_id == second.events[0].event_id


async def test_permanent_fourthwall_error_rejects_with_product_failed() -> None:
    fourthwall = FakeFourthwall(
        fail_customization=upstream_error("DESIGN_PIPELINE_INVALID_REGIONS", retryable=False)
    )
    outcome = await design_approved.handle(design(), 2, ports=ports(fourthwall))
    assert isinstance(outcome, Reject)
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1)
    assert (failed.stage, failed.code, failed.retryable, failed.attempts) == (
        "customization",
        "DESIGN_PIPELINE_INVALID_REGIONS",
        False,
        2,
    )


async def test_transient_error_asks_for_a_retry_and_exhaustion_reports_it() -> None:
    fourthwall = FakeFourthwall(fail_product=upstream_error("SQL_CONSTRAINTS_ERROR", True, 409))
    outcome = await design_approved.handle(design(), 1, ports=ports(fourthwall))
    assert isinstance(outcome, Retry) and outcome.stage == "product"
    failed = design_approved.exhausted(design(), outcome, 5)[0].data
    assert isinstance(failed, ProductFailedV1)
    assert (failed.retryable, failed.attempts, failed.code) == (True, 5, "SQL_CONSTRAINTS_ERROR")


async def test_missing_credentials_is_a_permanent_failure_with_a_clear_code() -> None:
    fourthwall = FakeFourthwall(fail_customization=MissingCredentials("fourthwall", "shop-1"))
    outcome = await design_approved.handle(design(), 1, ports=ports(fourthwall))
    assert isinstance(outcome, Reject) and outcome.code == "MISSING_CREDENTIALS"
    assert "shop-1" in outcome.detail


def product(pins: list[str]) -> ProductCreatedV1:
    return ProductCreatedV1(
        shop_id="shop-1",
        design_id="d-1",
        revision=1,
        customization_id="cst_1",
        product_id="prd_1",
        name="Tee",
        created_at="x",
        recommendations=Recommendations(pin_on_items=pins),
    )


def pin_ports(luigisbox: FakeLuigisBox) -> product_created.Ports:
    return product_created.Ports(
        luigisbox=luigisbox,
        clock=lambda: NOW,
        rules=PinRules(position=3),
        identity_template_for={"shop-1": "/p/{product_id}"},
    )


async def test_pins_created_lists_every_scope() -> None:
    luigisbox = FakeLuigisBox()
    outcome = await product_created.handle(product(["/p/a", "/p/b"]), 1, ports=pin_ports(luigisbox))
    assert isinstance(outcome, Done)
    pins = outcome.events[0].data
    assert isinstance(pins, PinsCreatedV1)
    assert [s.target_identity for s in pins.scopes] == ["/p/a", "/p/b"]
    assert {s.pin_identity for s in pins.scopes} == {"/p/prd_1"}
    assert luigisbox.scopes[0].pin_definitions[0].position == 3


async def test_luigisbox_422_is_permanent_and_keeps_details() -> None:
    from consumers.ports import UpstreamError

    error = UpstreamError(
        api="luigisbox",
        status=422,
        code="LUIGISBOX_HTTP_422",
        detail="Invalid pin definition provided: position",
        retryable=False,
    )
    outcome = await product_created.handle(
        product([]), 1, ports=pin_ports(FakeLuigisBox(fail=error))
    )
    assert isinstance(outcome, Reject)
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1)
    assert failed.stage == "pins" and "position" in failed.detail
