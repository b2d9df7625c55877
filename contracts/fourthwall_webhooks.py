"""Fourthwall's webhooks, as documented (docs/upstreams.md, "Fourthwall webhooks").

Every delivery is one event in the same envelope ("Webhook Model"): ``id`` (unique: a second
delivery with the same id is a duplicate), ``webhookId``, ``shopId``, ``type``, ``apiVersion``,
``createdAt``, ``testMode`` and ``data``. It is signed with the shop's webhook secret:
``X-Fourthwall-Hmac-SHA256`` is the base64 of HMAC-SHA256 over the raw body ("Signature
Verification"); there is no timestamp in what is signed. An app's webhooks ("Signature verification
for Platform Apps", the same page) are signed the same way under the app's HMAC key (one per app,
from the app's settings) and carry ``X-Fourthwall-Hmac-Apps-SHA256`` instead. The product events:
``PRODUCT_CREATED`` (``data`` is the product) and ``PRODUCT_UPDATED`` (the product under
``data.product``, which the event's page documents as a page of products,
``data.product.results[0]``; a bare product there is read too). A product (OfferFullV1) carries
``id``, ``name``, ``state.type`` (stock: ``AVAILABLE``, ``SOLD_OUT``), ``access.type`` (visibility:
``PUBLIC``, ``HIDDEN``, ``PRIVATE``, ``ARCHIVED``), ``images`` and ``updatedAt``. Fourthwall wants a
200 within 2,000 ms ("Retry Policies").
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec

SIGNATURE_HEADER = "X-Fourthwall-Hmac-SHA256"
APP_SIGNATURE_HEADER = "X-Fourthwall-Hmac-Apps-SHA256"
PRODUCT_CREATED = "PRODUCT_CREATED"
PRODUCT_UPDATED = "PRODUCT_UPDATED"
PRODUCT_EVENTS = (PRODUCT_CREATED, PRODUCT_UPDATED)
ANSWER_WITHIN_S = 2.0  # "Response times longer than 2000ms may result in a failed delivery"


class WebhookEnvelope(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    shop_id: str
    type: str
    created_at: str
    webhook_id: str | None = None
    api_version: str | None = None
    test_mode: bool = False
    data: msgspec.Raw = msgspec.Raw(b"{}")


class WebhookImage(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    width: int | None = None
    height: int | None = None


class WebhookProductState(msgspec.Struct, frozen=True, kw_only=True):
    type: str  # stock: AVAILABLE | SOLD_OUT


class WebhookProductAccess(msgspec.Struct, frozen=True, kw_only=True):
    type: str  # visibility: PUBLIC | HIDDEN | PRIVATE | ARCHIVED


class WebhookProduct(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    name: str
    state: WebhookProductState
    access: WebhookProductAccess
    images: list[WebhookImage] = []
    updated_at: str | None = None


class _ProductPage(msgspec.Struct, frozen=True, kw_only=True):
    results: list[WebhookProduct]


class _ProductUpdatedData(msgspec.Struct, frozen=True, kw_only=True):
    product: msgspec.Raw


def product_of(envelope: WebhookEnvelope) -> WebhookProduct:
    """The product a product event is about (``msgspec.ValidationError`` if it has none)."""
    if envelope.type != PRODUCT_UPDATED:
        return msgspec.json.decode(envelope.data, type=WebhookProduct)
    inner = msgspec.json.decode(envelope.data, type=_ProductUpdatedData).product
    try:
        page = msgspec.json.decode(inner, type=_ProductPage)
    except msgspec.ValidationError:
        return msgspec.json.decode(inner, type=WebhookProduct)
    if len(page.results) != 1:
        raise msgspec.ValidationError(
            f"Expected one product in `$.product.results`, got {len(page.results)}"
        )
    return page.results[0]


def signature(secret: str, body: bytes) -> str:
    """What Fourthwall sends in ``X-Fourthwall-Hmac-SHA256`` for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_by(secret: str, body: bytes, header: str | None) -> bool:
    """``header`` is ``body``'s signature under ``secret`` (compared in constant time)."""
    if not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())
