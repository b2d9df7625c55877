"""The product's catalogue object (pure)."""

from __future__ import annotations

from consumers.content import content_object
from contracts.events import ProductCreatedV1, ProductImage

IMAGES = [
    ProductImage(url="https://img/1.png", width=1, height=1, style="s", color="Black"),
    ProductImage(url="https://img/2.png", width=1, height=1, style="s", color="White"),
]


def created(**overrides: object) -> ProductCreatedV1:
    fields: dict[str, object] = {
        "shop_id": "shop-1",
        "design_id": "d-1",
        "revision": 2,
        "customization_id": "cst_1",
        "product_id": "prd_1",
        "name": "Tee",
        "created_at": "x",
        "images": IMAGES,
        "published": True,
    }
    return ProductCreatedV1(**{**fields, **overrides})  # type: ignore[arg-type]


def test_the_object_carries_what_the_product_has() -> None:
    item = content_object(created(), "/products/{product_id}", "https://s.example/p/{product_id}")
    assert item.identity == "/products/prd_1" and item.type == "item"
    assert item.fields == {
        "title": "Tee",
        "availability": 1,
        "product_id": "prd_1",
        "shop_id": "shop-1",
        "design_id": "d-1",
        "revision": 2,
        "image_link": "https://img/1.png",
        "web_url": "https://s.example/p/prd_1",
    }


def test_a_hidden_product_is_unavailable_and_nothing_is_made_up() -> None:
    item = content_object(created(published=False, images=[]), "{product_id}", None)
    assert item.fields["availability"] == 0
    assert "web_url" not in item.fields and "image_link" not in item.fields


def test_an_event_of_the_previous_version_is_not_taken_as_public() -> None:
    assert content_object(created(published=None), "{product_id}", None).fields["availability"] == 0
