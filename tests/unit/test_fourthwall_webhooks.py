"""Fourthwall's webhook contract: the documented envelope, both product event shapes, and the
signature as "Signature Verification" computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest

from contracts.fourthwall_webhooks import (
    WebhookEnvelope,
    product_of,
    signature,
    signed_by,
)

PRODUCT = {
    "id": "00aa4abd-5778-4199-8161-0b49b2f212e5",
    "name": "My t-shirt",
    "slug": "my-t-shirt",
    "type": "STANDARD",
    "state": {"type": "PUBLIC"},
    "images": [{"id": "i", "url": "https://fourthwall.com/image.png", "width": 800}],
    "updatedAt": "2020-08-13T09:05:36.939Z",
}


def _envelope(kind: str, data: object) -> bytes:
    return msgspec.json.encode(
        {
            "id": "weve_geAva6c1RAuyb9HQxbSlmA",
            "webhookId": "wcon_P-VkRfmJTBaC6_Tst22cew",
            "shopId": "sh_7ad0c438-beda-4779-a885-0dc325a755c1",
            "type": kind,
            "apiVersion": "V1",
            "createdAt": "2023-07-12T15:05:11.078089+00:00",
            "testMode": False,
            "data": data,
        }
    )


@pytest.mark.parametrize(
    ("kind", "data"), [("PRODUCT_CREATED", PRODUCT), ("PRODUCT_UPDATED", {"product": PRODUCT})]
)
def test_both_product_events_name_the_product(kind: str, data: object) -> None:
    envelope = msgspec.json.decode(_envelope(kind, data), type=WebhookEnvelope)
    product = product_of(envelope)
    assert (product.id, product.name, product.state.type) == (PRODUCT["id"], "My t-shirt", "PUBLIC")
    assert product.images[0].url == "https://fourthwall.com/image.png"
    assert product.updated_at == "2020-08-13T09:05:36.939Z"
    assert envelope.shop_id.startswith("sh_") and envelope.id.startswith("weve_")


def test_an_update_without_its_product_is_refused() -> None:
    envelope = msgspec.json.decode(_envelope("PRODUCT_UPDATED", PRODUCT), type=WebhookEnvelope)
    with pytest.raises(msgspec.ValidationError, match="product"):
        product_of(envelope)


def test_the_signature_is_the_documented_base64_hmac_sha256_of_the_raw_body() -> None:
    body, secret = _envelope("PRODUCT_CREATED", PRODUCT), "e3f93c7c-c92b-4b8f-a9b1-5b70e0891abc"
    documented = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    assert signature(secret, body) == documented.decode()
    assert signed_by(secret, body, documented.decode())
    assert not signed_by(secret, body + b" ", documented.decode())  # any change to the body
    assert not signed_by("another-secret", body, documented.decode())
    assert not signed_by(secret, body, None) and not signed_by(secret, body, "")
