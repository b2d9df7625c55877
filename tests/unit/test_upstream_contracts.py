"""The clients against the upstreams' documented examples (``tests/fixtures/upstreams``): every
documented answer decodes into what the client reads, with each field where the page puts it, and
every documented request is one the client's Structs can say. The sandbox is checked against the
same examples over HTTP (tests/integration/test_sandbox_contracts.py): one misread can no longer
pass twice."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs

import httpx
import msgspec
import pytest

from contracts.fourthwall import (
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductRequestV1,
    CreateProductResponseV1,
    MediaImageV1,
    MediaUploadUrlRequestV1,
    MediaUploadUrlResponseV1,
    ProductV1,
    SaveMediaImageRequestV1,
    UpdateProductStateRequestV1,
    on_sale,
)
from contracts.fourthwall_tokens import (
    TOKEN_PATH,
    PlatformTokenV1,
    decode_token_error,
    refresh_form,
)
from contracts.fourthwall_webhooks import (
    APP_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    WebhookEnvelope,
    product_of,
    signature,
    signed_by,
)
from contracts.luigisbox import ContentResult, ContentUpdate, ScopeList, ScopeRequest, ScopeResponse
from service.sandbox.platform_tokens import TOKEN as SANDBOX_TOKEN_PATH
from service.sandbox.signing import (
    FOURTHWALL_APP_SIGNATURE_HEADER,
    FOURTHWALL_SIGNATURE_HEADER,
    fourthwall_webhook_signature,
)
from service.upstreams.fourthwall import error_from_response as fourthwall_error
from service.upstreams.luigisbox import error_from_response as luigisbox_error
from service.webhooks.fourthwall import changed_event
from tests.documented import documented


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("fourthwall_create_customization", CreateCustomizationRequestV1),
        ("fourthwall_create_product", CreateProductRequestV1),
        ("fourthwall_update_product_state", UpdateProductStateRequestV1),
        ("fourthwall_request_upload_url", MediaUploadUrlRequestV1),
        ("fourthwall_save_media_image", SaveMediaImageRequestV1),
        ("luigisbox_create_scope", ScopeRequest),
        ("luigisbox_update_scope", ScopeRequest),
        ("luigisbox_content_update", ContentUpdate),
    ],
)
def test_each_documented_request_is_one_the_client_can_send(name: str, kind: type) -> None:
    example = documented(name)["request"]
    request = msgspec.convert(example, kind)  # the request Structs forbid unknown fields
    assert msgspec.json.decode(msgspec.json.encode(request)) == example


def test_the_created_customization_and_product_are_read_as_documented() -> None:
    sketch = msgspec.convert(
        documented("fourthwall_create_customization")["response"], CreateCustomizationResponseV1
    )
    assert sketch.customization_id == "cst_k66ZW4fsRm6c2def3itltA" and sketch.images[0].width
    product = msgspec.convert(
        documented("fourthwall_create_product")["response"], CreateProductResponseV1
    )
    assert (product.product_id, product.customization_id) == ("<string>", "<string>")


def test_the_media_librarys_answers_are_read_as_documented() -> None:
    ticket = msgspec.convert(
        documented("fourthwall_request_upload_url")["response"], MediaUploadUrlResponseV1
    )
    assert (ticket.upload_url, ticket.file_url) == ("<string>", "<string>")
    image = msgspec.convert(documented("fourthwall_save_media_image")["response"], MediaImageV1)
    assert (image.id, image.width, image.thumbnail) == ("<string>", 123, "<string>")


@pytest.mark.parametrize("name", ["fourthwall_get_product", "fourthwall_update_product_state"])
def test_a_products_stock_and_visibility_are_two_fields(name: str) -> None:
    """``state`` is stock (AVAILABLE, SOLD_OUT), ``access`` visibility: a public product that
    sold out is not on sale, and neither is read from the other."""
    product = msgspec.convert(documented(name)["response"], ProductV1)
    assert product.state is not None and product.access is not None
    assert (product.access.type, product.state.type) == ("PUBLIC", "SOLD_OUT")
    assert not on_sale(product.access.type, product.state.type)
    assert on_sale("PUBLIC", "AVAILABLE") and not on_sale("HIDDEN", "AVAILABLE")
    assert not on_sale("PRIVATE", None) and on_sale("PUBLIC", None)


@pytest.mark.parametrize(
    ("name", "access", "stock"),
    [
        ("fourthwall_webhook_product_created", "PUBLIC", "SOLD_OUT"),
        ("fourthwall_webhook_product_updated", "HIDDEN", "AVAILABLE"),
    ],
)
def test_each_documented_product_event_becomes_a_change_with_both_axes(
    name: str, access: str, stock: str
) -> None:
    body = msgspec.json.encode(documented(name)["request"])
    envelope = msgspec.json.decode(body, type=WebhookEnvelope)
    product = product_of(envelope)
    assert (product.id, product.access.type, product.state.type) == (
        "00aa4abd-5778-4199-8161-0b49b2f212e5",
        access,
        stock,
    )
    data = msgspec.json.decode(changed_event(envelope, product, "shop-1").data)
    # the visibility also in `state`, where a consumer of the previous version reads it
    assert (data["access"], data["stock"], data["state"]) == (access, stock, access)


def test_a_bare_product_under_data_product_is_read_too() -> None:
    example = documented("fourthwall_webhook_product_updated")["request"]
    example["data"] = {"product": example["data"]["product"]["results"][0]}
    envelope = msgspec.json.decode(msgspec.json.encode(example), type=WebhookEnvelope)
    assert product_of(envelope).access.type == "HIDDEN"


@pytest.mark.parametrize("results", [[], "two"])
def test_an_update_without_exactly_one_product_is_refused(results: object) -> None:
    example = documented("fourthwall_webhook_product_updated")["request"]
    product = example["data"]["product"]["results"][0]
    example["data"] = {"product": {"results": [product, product] if results == "two" else []}}
    envelope = msgspec.json.decode(msgspec.json.encode(example), type=WebhookEnvelope)
    with pytest.raises(msgspec.ValidationError, match="one product"):
        product_of(envelope)


def test_the_client_and_the_sandbox_sign_webhooks_alike_and_as_documented() -> None:
    body = msgspec.json.encode(documented("fourthwall_webhook_product_created")["request"])
    secret = "e3f93c7c-c92b-4b8f-a9b1-5b70e0891abc"
    # "Signature Verification": base64 of HMAC-SHA256 over the entire body
    page = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    assert signature(secret, body) == fourthwall_webhook_signature(secret, body) == page
    assert signed_by(secret, body, page) and not signed_by(secret, body + b" ", page)
    assert not signed_by("another-secret", body, page) and not signed_by(secret, body, None)


@pytest.mark.parametrize(
    ("name", "code", "retryable"),
    [
        ("fourthwall_customization_already_used", "CUSTOMIZATION_ALREADY_USED_ERROR", False),
        ("fourthwall_too_many_requests", "OPEN_API_TOO_MANY_REQUESTS", True),
        ("fourthwall_product_not_found", "OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR", False),
    ],
)
def test_each_documented_fourthwall_error_is_read_by_its_code(
    name: str, code: str, retryable: bool
) -> None:
    example = documented(name)
    answer = httpx.Response(example["status"], json=example["response"])
    error = fourthwall_error(answer)
    assert (error.status, error.code, error.retryable) == (example["status"], code, retryable)


def test_the_luigisbox_answers_are_read_as_documented() -> None:
    created = msgspec.convert(documented("luigisbox_create_scope")["response"], ScopeResponse)
    assert created.id == "199620b4-df1a-46e8-ab59-9e9ed9af7106"
    one = msgspec.convert(documented("luigisbox_get_scope")["response"], ScopeResponse)
    assert (one.tags, one.available) == (["summer"], True)
    page = msgspec.convert(documented("luigisbox_get_scopes")["response"], ScopeList)
    assert page.pagination.total == 1 and page.results[0].tags == ["summer"]
    content = msgspec.convert(documented("luigisbox_content_update")["response"], ContentResult)
    assert (content.ok_count, content.errors_count) == (1, 0)
    invalid = documented("luigisbox_invalid_pin_definition")
    error = luigisbox_error(httpx.Response(invalid["status"], json=invalid["response"]))
    assert (error.status, error.retryable) == (422, False)
    assert "Missing required field: position" in error.detail


def test_each_line_of_the_documented_bulk_create_is_a_scope_the_client_can_send() -> None:
    for line in documented("luigisbox_bulk_create")["request_lines"]:
        request = msgspec.convert(line, ScopeRequest)
        assert msgspec.json.decode(msgspec.json.encode(request)) == line


def test_the_refresh_the_client_sends_is_the_documented_form() -> None:
    example = documented("fourthwall_exchange_token_refresh")
    assert TOKEN_PATH == SANDBOX_TOKEN_PATH == example["path"]
    sent = {
        k: v[0]
        for k, v in parse_qs(refresh_form("app_12345", "<string>", "<string>").decode()).items()
    }
    assert sent == example["request"]
    assert set(sent) <= set(example["request_fields"])


def test_the_token_answer_and_the_refusal_are_read_as_documented() -> None:
    example = documented("fourthwall_exchange_token_refresh")
    token = msgspec.convert(example["response"], PlatformTokenV1)
    assert (token.access_token, token.refresh_token, token.expires_in) == (
        "<string>",
        "<string>",
        None,
    )
    both = msgspec.convert({**example["response"], **example["assumed"]}, PlatformTokenV1)
    assert both.expires_in == 3600 and both.token_type == "Bearer"
    refused = documented("fourthwall_exchange_token_invalid_grant")
    error = decode_token_error(msgspec.json.encode(refused["response"]))
    assert error is not None and error.error == "invalid_grant"
    assert decode_token_error(b"not json") is None


def test_app_webhooks_are_signed_in_the_documented_header_alike_by_client_and_sandbox() -> None:
    example = documented("fourthwall_app_webhook_signature")
    assert [APP_SIGNATURE_HEADER] == [FOURTHWALL_APP_SIGNATURE_HEADER] == list(example["headers"])
    assert [SIGNATURE_HEADER] == [FOURTHWALL_SIGNATURE_HEADER] == list(example["shop_headers"])
    body = msgspec.json.encode(documented("fourthwall_webhook_product_updated")["request"])
    key = "app-hmac-key"
    page = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    assert signature(key, body) == fourthwall_webhook_signature(key, body) == page
