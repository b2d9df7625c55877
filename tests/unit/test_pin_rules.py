from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumers.pin_rules import PinRules, item_identity, plan_scopes
from contracts.events import ProductCreatedV1, Recommendations

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def product(recommendations: Recommendations | None) -> ProductCreatedV1:
    return ProductCreatedV1(
        shop_id="s",
        design_id="d",
        revision=1,
        customization_id="cst",
        product_id="prd_1",
        name="Tee",
        created_at="x",
        recommendations=recommendations,
    )


def test_one_item_scope_per_listed_item_pins_the_new_product() -> None:
    rules = PinRules(model="basket", position=2, tags=["merch"])
    scopes = plan_scopes(
        product(Recommendations(pin_on_items=["/p/1", "/p/2", "/p/1"], tags=["fall"])),
        rules,
        "/p/{product_id}",
        NOW,
    )
    assert [key for key, _ in scopes] == ["item:/p/1", "item:/p/2"]
    request = scopes[0][1]
    assert request.target_type == "item" and request.target_identity == "/p/1"
    assert request.tags == ["merch", "fall"]
    pin = request.pin_definitions[0]
    assert (pin.position, pin.pin_type, pin.pin_identity) == (2, "item", "/p/prd_1")
    assert pin.active_from is None


def test_no_items_means_one_all_scope_for_the_configured_window() -> None:
    scopes = plan_scopes(product(None), PinRules(all_window_days=14), "{product_id}", NOW)
    assert len(scopes) == 1
    key, request = scopes[0]
    assert key == "all" and request.target_type == "all" and request.target_identity is None
    pin = request.pin_definitions[0]
    assert pin.active_from == "2026-11-01T12:00:00Z"
    assert pin.active_to == (NOW + timedelta(days=14)).isoformat().replace("+00:00", "Z")
    assert request.tags is None


def test_identity_template_fields() -> None:
    assert (
        item_identity("{shop_id}/{design_id}/{customization_id}/{product_id}", product(None))
        == "s/d/cst/prd_1"
    )
