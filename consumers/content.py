"""The product's object in the shop's Luigi's Box catalogue (pure functions).

Luigi's Box recommends only items its catalogue knows and holds available, so a product is put
into the catalogue before it is pinned. Its ``identity`` is the identity the scopes pin (the
rendered ``item_identity_template``): it must equal the identity of the same product in the
shop's own catalogue feed, or the next feed import adds the item a second time.
"""

from __future__ import annotations

from typing import Any

from consumers.pin_rules import item_identity
from contracts.events import ProductCreatedV1
from contracts.luigisbox import ITEM_TYPE, ContentObject, ContentRef


def product_url(template: str, product: ProductCreatedV1) -> str:
    """The product's web URL from a shop's ``product_url_template`` (the same placeholders as
    the identity template)."""
    return item_identity(template, product)


def content_object(
    product: ProductCreatedV1, identity_template: str, url_template: str | None
) -> ContentObject:
    """The index-object for ``product``: ``title`` (required) and what the product has: its
    first image, its web URL when the shop has a template for it, the shop, design and
    revision, and ``availability`` 1 only when Fourthwall made it public (a hidden product's
    pins stay dormant until it is published)."""
    fields: dict[str, Any] = {
        "title": product.name,
        "availability": 1 if product.published else 0,
        "product_id": product.product_id,
        "shop_id": product.shop_id,
        "design_id": product.design_id,
        "revision": product.revision,
    }
    if product.images:
        fields["image_link"] = product.images[0].url
    if url_template:
        fields["web_url"] = product_url(url_template, product)
    return ContentObject(
        identity=item_identity(identity_template, product), type=ITEM_TYPE, fields=fields
    )


def is_available(item: ContentObject) -> bool:
    return bool(item.fields.get("availability") == 1)


def content_ref(identity: str) -> ContentRef:
    return ContentRef(identity=identity, type=ITEM_TYPE)


def content_change(
    identity: str, name: str, available: bool | None, image_url: str | None
) -> ContentObject:
    """The partial update for a product a shop owner changed in Fourthwall: its title, its
    availability (1 only while public and not sold out; left as it is when not known) and its
    first image, when it has one."""
    fields: dict[str, Any] = {"title": name}
    if available is not None:
        fields["availability"] = 1 if available else 0
    if image_url:
        fields["image_link"] = image_url
    return ContentObject(identity=identity, type=ITEM_TYPE, fields=fields)
