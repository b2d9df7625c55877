"""The upstream clients against the sandbox over loopback HTTP: auth, typed errors, HMAC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from consumers.ports import MissingCredentials, UpstreamError
from contracts.fourthwall import (
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    ProductDesignRegionV1,
)
from contracts.luigisbox import (
    CONTENT_PATH,
    CONTENT_TYPE,
    ContentObject,
    PinDefinition,
    ScopeRequest,
    scope_path,
)
from service.sandbox.config import ShopAccount
from service.secrets import Secret
from service.testing.sandbox import running_sandbox, sandbox_config
from service.upstreams import luigisbox_auth
from service.upstreams.credentials import FourthwallAuth, LuigisBoxAccount
from service.upstreams.fourthwall import FourthwallClient
from service.upstreams.http import new_http_client
from service.upstreams.luigisbox import LuigisBoxClient

pytestmark = pytest.mark.integration

SKETCH = CreateCustomizationRequestV1(
    product_template_id="pro_tee", regions=[ProductDesignRegionV1(region="front", image_id="img_1")]
)
SCOPE = ScopeRequest(
    model="basket",
    target_type="all",
    pin_definitions=[PinDefinition(position=1, pin_type="item", pin_identity="p")],
)


def fourthwall(url: str, auth: FourthwallAuth | None) -> FourthwallClient:
    return FourthwallClient(new_http_client(url, 5), lambda shop: auth)


async def test_basic_auth_and_bearer_token_both_work() -> None:
    config = sandbox_config(1)
    config.shops.append(ShopAccount(shop_id="token-shop", token="tok-123"))
    async with running_sandbox(config) as sandbox:
        basic = fourthwall(sandbox.url, FourthwallAuth("user-1", Secret("fw-password-1"), None))
        sketch = await basic.create_customization("shop-1", SKETCH)
        product = await basic.create_product(
            "shop-1",
            CreateCustomizationProductRequestV1(
                customization_id=sketch.customization_id, name="Tee"
            ),
        )
        assert product.product_id and product.customization_id == sketch.customization_id
        bearer = fourthwall(sandbox.url, FourthwallAuth(None, None, Secret("tok-123")))
        assert (await bearer.create_customization("token-shop", SKETCH)).customization_id


async def test_fourthwall_errors_carry_the_documented_code() -> None:
    async with running_sandbox(sandbox_config(1, heavy_calls=3)) as sandbox:
        client = fourthwall(sandbox.url, FourthwallAuth("user-1", Secret("fw-password-1"), None))
        bad_region = CreateCustomizationRequestV1(
            product_template_id="pro_tee",
            regions=[ProductDesignRegionV1(region="sleeve", image_id="img_1")],
        )
        with pytest.raises(UpstreamError) as invalid:
            await client.create_customization("shop-1", bad_region)
        assert (invalid.value.status, invalid.value.code, invalid.value.retryable) == (
            400,
            "DESIGN_PIPELINE_INVALID_REGIONS",
            False,
        )
        assert "validRegions" in invalid.value.detail
        with pytest.raises(UpstreamError) as unknown:
            await client.create_customization(
                "shop-1", CreateCustomizationRequestV1(product_template_id="pro_nope")
            )
        assert unknown.value.code == "PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND"
        with pytest.raises(UpstreamError) as limited:
            await client.create_customization("shop-1", SKETCH)
            await client.create_customization("shop-1", SKETCH)
        assert (limited.value.status, limited.value.code, limited.value.retryable) == (
            429,
            "OPEN_API_TOO_MANY_REQUESTS",
            True,
        )
        assert limited.value.retry_after_s is not None and limited.value.retry_after_s > 0
        wrong = fourthwall(sandbox.url, FourthwallAuth("user-1", Secret("nope"), None))
        with pytest.raises(UpstreamError) as denied:
            await wrong.create_customization("shop-1", SKETCH)
        assert (denied.value.status, denied.value.retryable) == (401, False)
        with pytest.raises(MissingCredentials):
            await fourthwall(sandbox.url, None).create_customization("shop-1", SKETCH)


async def test_unreachable_upstream_is_a_retryable_connection_error() -> None:
    client = fourthwall("http://127.0.0.1:9", FourthwallAuth(None, None, Secret("t")))
    with pytest.raises(UpstreamError) as caught:
        await client.create_customization("shop-1", SKETCH)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (
        None,
        "CONNECTION_ERROR",
        True,
    )


def luigisbox(
    url: str, key: str, tracker: str = "0001-5678", date: str | None = None
) -> LuigisBoxClient:
    account = LuigisBoxAccount(tracker, Secret(key))
    if date is None:
        return LuigisBoxClient(new_http_client(url, 5), lambda shop: account)
    return LuigisBoxClient(new_http_client(url, 5), lambda shop: account, date=lambda: date)


async def test_luigisbox_hmac_is_accepted_and_every_bad_signature_refused() -> None:
    async with running_sandbox(sandbox_config(1)) as sandbox:
        created = await luigisbox(sandbox.url, "lb-key-1").create_scope("shop-1", SCOPE)
        assert created.id and created.target_type == "all"
        stale = luigisbox_auth.http_date(datetime.now(UTC) - timedelta(minutes=20))
        for client, status in (
            (luigisbox(sandbox.url, "wrong-key"), 401),
            (luigisbox(sandbox.url, "lb-key-1", date=stale), 401),
            (luigisbox(sandbox.url, "lb-key-1", tracker="9999-9999"), 404),
        ):
            with pytest.raises(UpstreamError) as caught:
                await client.create_scope("shop-1", SCOPE)
            assert (caught.value.status, caught.value.retryable) == (status, False)


async def test_invalid_pin_definition_is_422_with_exception_details() -> None:
    async with running_sandbox(sandbox_config(1)) as sandbox:
        path = scope_path("0001-5678")
        date = luigisbox_auth.now_http_date()
        sig = luigisbox_auth.signature("lb-key-1", "POST", CONTENT_TYPE, date, path)
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            response = await http.post(
                path,
                content=b'{"model":"basket","target_type":"all",'
                b'"pin_definitions":[{"pin_type":"item"}]}',
                headers={
                    "Content-Type": CONTENT_TYPE,
                    "Date": date,
                    "Authorization": f"ApiAuth 0001-5678:{sig}",
                },
            )
        assert response.status_code == 422
        assert "position" in response.json()["exception_details"]["pin_definitions"][0]


async def test_a_scope_is_found_by_its_tag_through_the_signed_listing() -> None:
    async with running_sandbox(sandbox_config(2)) as sandbox:
        client = luigisbox(sandbox.url, "lb-key-1")
        other = luigisbox(sandbox.url, "lb-key-2", tracker="0002-5678")
        tagged = msgspec.structs.replace(SCOPE, tags=["promo", "merch-pipeline:abc"])
        created = await client.create_scope("shop-1", tagged)
        await client.create_scope("shop-1", msgspec.structs.replace(SCOPE, tags=["promo"]))
        found = await client.find_scope("shop-1", "merch-pipeline:abc")
        assert found is not None and found.id == created.id
        assert found.tags == ["promo", "merch-pipeline:abc"]
        assert await client.find_scope("shop-1", "merch-pipeline:none") is None
        assert await other.find_scope("shop-2", "merch-pipeline:abc") is None  # per tracker
        with pytest.raises(UpstreamError) as caught:
            await luigisbox(sandbox.url, "wrong-key").find_scope("shop-1", "merch-pipeline:abc")
        assert caught.value.status == 401
        listed = [c for c in (await sandbox.records())["calls"] if c["endpoint"].endswith("scopes")]
        assert [c["status"] for c in listed] == [200, 200, 200, 401]


ITEM = ContentObject(identity="/p/prd_1", type="item", fields={"title": "Tee", "availability": 1})


async def _signed_content(url: str, method: str, body: bytes, key: str = "lb-key-1") -> Any:
    date = luigisbox_auth.now_http_date()
    sig = luigisbox_auth.signature(key, method, CONTENT_TYPE, date, CONTENT_PATH)
    async with httpx.AsyncClient(base_url=url) as http:
        return await http.request(
            method,
            CONTENT_PATH,
            content=body,
            headers={
                "Content-Type": CONTENT_TYPE,
                "Date": date,
                "Authorization": f"ApiAuth 0001-5678:{sig}",
            },
        )


async def test_content_is_indexed_per_tracker_and_a_refused_object_has_a_clear_code() -> None:
    async with running_sandbox(sandbox_config(2)) as sandbox:
        client = luigisbox(sandbox.url, "lb-key-1")
        await client.index_content("shop-1", ITEM)
        await client.index_content("shop-1", ITEM)  # a full replacement: twice is harmless
        content = (await sandbox.records())["content"]
        assert content == {"0001-5678": {"/p/prd_1": msgspec.to_builtins(ITEM)}}
        untitled = msgspec.structs.replace(ITEM, fields={"availability": 1})
        with pytest.raises(UpstreamError) as caught:
            await client.index_content("shop-1", untitled)
        assert (caught.value.code, caught.value.retryable) == ("LUIGISBOX_CONTENT_REJECTED", False)
        assert "/p/prd_1" in caught.value.detail and "title" in caught.value.detail
        with pytest.raises(UpstreamError) as caught:
            await luigisbox(sandbox.url, "wrong-key").index_content("shop-1", ITEM)
        assert (caught.value.code, caught.value.retryable) == ("LUIGISBOX_CONTENT_HTTP_401", False)


async def test_content_partial_update_and_removal_as_documented() -> None:
    async with running_sandbox(sandbox_config(1)) as sandbox:
        await luigisbox(sandbox.url, "lb-key-1").index_content("shop-1", ITEM)
        patch = b'{"objects":[{"identity":"/p/prd_1","fields":{"availability":0}}]}'
        assert (await _signed_content(sandbox.url, "PATCH", patch)).status_code == 200
        item = (await sandbox.records())["content"]["0001-5678"]["/p/prd_1"]
        assert item["fields"] == {"title": "Tee", "availability": 0}  # the rest kept
        unknown = b'{"objects":[{"identity":"/p/none","fields":{"availability":0}}]}'
        refused = await _signed_content(sandbox.url, "PATCH", unknown)
        assert refused.status_code == 400 and "/p/none" in refused.json()["errors"]
        signed_as_post = await _signed_content(sandbox.url, "DELETE", b"{}", key="wrong")
        assert signed_as_post.status_code == 401
        removal = b'{"objects":[{"identity":"/p/prd_1","type":"item"}]}'
        assert (await _signed_content(sandbox.url, "DELETE", removal)).status_code == 200
        assert (await sandbox.records())["content"]["0001-5678"] == {}


async def test_a_product_is_hidden_and_published_again_idempotently() -> None:
    async with running_sandbox(sandbox_config(2)) as sandbox:
        client = fourthwall(sandbox.url, FourthwallAuth("user-1", Secret("fw-password-1"), None))
        sketch = await client.create_customization("shop-1", SKETCH)
        created = await client.create_product(
            "shop-1",
            CreateCustomizationProductRequestV1(
                customization_id=sketch.customization_id, name="Tee", publish_on_create=True
            ),
        )
        product_id = created.product_id or ""
        assert (await sandbox.records())["products"][product_id]["access"] == "PUBLIC"
        for _ in range(2):  # the second is a no-op, as documented
            hidden = await client.set_product_state("shop-1", product_id, "HIDDEN")
            assert hidden.id == product_id and hidden.access and hidden.access.type == "HIDDEN"
            assert hidden.state and hidden.state.type == "AVAILABLE"  # stock, kept
        assert (await sandbox.records())["products"][product_id]["access"] == "HIDDEN"
        other = fourthwall(sandbox.url, FourthwallAuth("user-2", Secret("fw-password-2"), None))
        with pytest.raises(UpstreamError) as caught:  # another shop's product is not found
            await other.set_product_state("shop-2", product_id, "PUBLIC")
        error = caught.value
        assert (error.status, error.code, error.retryable) == (
            404,
            "OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR",
            False,
        )
        calls = (await sandbox.records())["calls"]
        assert [c["status"] for c in calls if c["endpoint"].endswith("/state")] == [200, 200, 404]


async def test_a_scope_is_deleted_once_and_a_second_delete_finds_it_gone() -> None:
    async with running_sandbox(sandbox_config(1)) as sandbox:
        client = luigisbox(sandbox.url, "lb-key-1")
        created = await client.create_scope("shop-1", SCOPE)
        assert await client.delete_scope("shop-1", created.id) is True
        assert (await sandbox.records())["scopes"] == []
        assert await client.delete_scope("shop-1", created.id) is False  # gone already
        with pytest.raises(UpstreamError) as caught:
            await luigisbox(sandbox.url, "wrong-key").delete_scope("shop-1", created.id)
        assert caught.value.status == 401
