"""Which Luigi's Box pin scopes promote a new product (pure functions)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import msgspec

from contracts.events import ProductCreatedV1
from contracts.luigisbox import PinDefinition, ScopeRequest
from contracts.timestamps import iso


class PinRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configuration: how the new product is pinned.

    ``item_identity_template`` turns a product into the item identity Luigi's Box knows it by
    (``{product_id}``, ``{shop_id}``, ``{design_id}`` and ``{customization_id}`` are filled in).
    """

    model: str = "basket"
    position: int = 1
    tags: list[str] = []
    all_window_days: float = 14.0
    item_identity_template: str = "{product_id}"


def item_identity(template: str, product: ProductCreatedV1) -> str:
    return template.format(
        product_id=product.product_id,
        shop_id=product.shop_id,
        design_id=product.design_id,
        customization_id=product.customization_id,
    )


FENCE_TAG_PREFIX = "merch-pipeline:"
PRODUCT_TAG_PREFIX = "merch-pipeline-product:"


def product_tag(product_id: str) -> str:
    """The tag every scope of one product carries: one listing finds them all (after a bulk
    create, which answers no ids; or for an operator looking in Luigi's Box)."""
    return PRODUCT_TAG_PREFIX + hashlib.sha256(product_id.encode()).hexdigest()[:24]


def fence_tag(product_id: str, rule_key: str) -> str:
    """The tag that names a scope we create for (product, rule), so a retry can find it in
    Luigi's Box when the answer to the create was lost. Deterministic, short, URL-safe."""
    digest = hashlib.sha256(f"{product_id}\x00{rule_key}".encode()).hexdigest()[:24]
    return FENCE_TAG_PREFIX + digest


def plan_scopes(
    product: ProductCreatedV1, rules: PinRules, identity_template: str, now: datetime
) -> list[tuple[str, ScopeRequest]]:
    """One ``item`` scope per ``pin_on_items`` entry, or one time-boxed ``all`` scope.

    Each scope comes with a rule key that names it among the product's scopes, stable across
    redeliveries (``item:<identity>`` or ``all``).
    """
    pinned = item_identity(identity_template, product)
    extra = product.recommendations.tags if product.recommendations else []
    tags = list(dict.fromkeys([*rules.tags, *extra])) or None
    items = product.recommendations.pin_on_items if product.recommendations else []
    if items:
        pin = PinDefinition(position=rules.position, pin_type="item", pin_identity=pinned)
        return [
            (
                f"item:{item}",
                ScopeRequest(
                    model=rules.model,
                    target_type="item",
                    target_identity=item,
                    tags=tags,
                    pin_definitions=[pin],
                ),
            )
            for item in dict.fromkeys(items)
        ]
    window = PinDefinition(
        position=rules.position,
        pin_type="item",
        pin_identity=pinned,
        active_from=iso(now),
        active_to=iso(now + timedelta(days=rules.all_window_days)),
    )
    return [
        (
            "all",
            ScopeRequest(model=rules.model, target_type="all", tags=tags, pin_definitions=[window]),
        )
    ]
