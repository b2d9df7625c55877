"""The sandbox against the upstreams' documented examples (``tests/fixtures/upstreams``), over
loopback HTTP: each documented request is taken with the documented status, and each answer and
webhook has the documented shape (no field the page does not show, each where the page puts it).
The requests here are built and signed from the pages, not by the clients; the clients meet the
same examples in tests/unit/test_upstream_contracts.py. Also: ids in paths cannot change the
endpoint, and Luigi's Box's ``Date`` tolerance is seconds."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest

from consumers.ports import UpstreamError
from contracts.luigisbox import PinDefinition, ScopeRequest
from service.sandbox.config import App, Template
from service.secrets import Secret
from service.testing.sandbox import SandboxHandle, running_sandbox, sandbox_config
from service.upstreams.credentials import FourthwallAuth, LuigisBoxAccount
from service.upstreams.fourthwall import FourthwallClient
from service.upstreams.http import new_http_client
from service.upstreams.luigisbox import LuigisBoxClient
from tests.documented import documented, missing, undocumented

pytestmark = pytest.mark.integration

TEMPLATE = "pro_k66ZW4fsRm6c2def3itltA"  # the documented example's template
BASIC = "Basic " + base64.b64encode(b"user-1:fw-password-1").decode()
TRACKER, KEY = "0001-5678", "lb-key-1"
CONTENT_TYPE = "application/json; charset=utf-8"


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxHandle]:
    config = sandbox_config(2, heavy_calls=3)
    config.templates[TEMPLATE] = Template(
        name="Classic Tee", regions=["front"], colors=["Black"], sizes=["M"]
    )
    async with running_sandbox(config) as running:
        yield running


async def _fourthwall(sandbox: SandboxHandle, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        return await http.request(
            method,
            path,
            content=b"" if body is None else msgspec.json.encode(body),
            headers={"Authorization": BASIC, "Content-Type": "application/json"},
        )


def _same_shape(answer: httpx.Response, example: dict[str, Any]) -> None:
    assert answer.status_code == example["status"], answer.text
    if "response" in example:
        body = answer.json()
        assert not undocumented(body, example["response"]), undocumented(body, example["response"])
        assert not missing(body, example["response"]), missing(body, example["response"])


async def test_fourthwall_answers_as_its_pages_document(sandbox: SandboxHandle) -> None:
    sketch = documented("fourthwall_create_customization")
    made = await _fourthwall(sandbox, "POST", sketch["path"], sketch["request"])
    _same_shape(made, sketch)
    product = documented("fourthwall_create_product")
    request = {**product["request"], "customizationId": made.json()["customizationId"]}
    created = await _fourthwall(sandbox, "POST", product["path"], request)
    _same_shape(created, product)
    again = await _fourthwall(sandbox, "POST", product["path"], request)
    _same_shape(again, documented("fourthwall_customization_already_used"))
    product_id = created.json()["productId"]

    state = documented("fourthwall_update_product_state")
    path = state["path"].replace("{productId}", product_id)
    hidden = await _fourthwall(sandbox, "PUT", path, {"state": "HIDDEN"})
    _same_shape(hidden, state)
    # the visibility is `access`; `state` (stock) is kept
    assert (hidden.json()["access"], hidden.json()["state"]) == (
        {"type": "HIDDEN"},
        {"type": "AVAILABLE"},
    )
    read = documented("fourthwall_get_product")
    got = await _fourthwall(sandbox, "GET", read["path"].replace("{productId}", product_id))
    _same_shape(got, read)
    assert got.json()["access"] == {"type": "HIDDEN"}
    unknown = await _fourthwall(sandbox, "GET", read["path"].replace("{productId}", "prd_none"))
    _same_shape(unknown, documented("fourthwall_product_not_found"))

    template = documented("fourthwall_get_product_template")
    path = template["path"].replace("{productId}", TEMPLATE)
    async with httpx.AsyncClient(base_url=sandbox.url) as http:  # public: no credentials
        _same_shape(await http.get(path), template)

    limited = await _fourthwall(sandbox, "POST", sketch["path"], sketch["request"])
    _same_shape(limited, documented("fourthwall_too_many_requests"))  # the 4th heavy call of 3
    assert limited.headers["Retry-After"]


async def test_an_image_is_uploaded_and_saved_as_the_pages_document(
    sandbox: SandboxHandle,
) -> None:
    """Upload URL, PUT with the declared type and length range (anything else: 403, the URL is
    signed for them), save; the saved image's id is a region's imageId."""
    ask = documented("fourthwall_request_upload_url")
    ticket = await _fourthwall(sandbox, "POST", ask["path"], ask["request"])
    _same_shape(ticket, ask)
    upload_url, file_url = ticket.json()["uploadUrl"], ticket.json()["fileUrl"]
    data = b"\x89PNG" + b"\x00" * 2000
    async with httpx.AsyncClient() as http:  # no Authorization: the URL is the credential
        wrong = await http.put(upload_url, content=data, headers={"Content-Type": "image/jpeg"})
        assert wrong.status_code == 403
        headers = {"Content-Type": "image/png", "x-goog-content-length-range": "0,2048"}
        assert (await http.put(upload_url, content=data, headers=headers)).status_code == 200
    save = documented("fourthwall_save_media_image")
    unknown = await _fourthwall(sandbox, "POST", save["path"], save["request"])
    assert unknown.status_code == 400  # a fileUrl nothing was uploaded to
    saved = await _fourthwall(
        sandbox, "POST", save["path"], {**save["request"], "fileUrl": file_url}
    )
    _same_shape(saved, save)
    sketch = documented("fourthwall_create_customization")
    region = {**sketch["request"]["regions"][0], "imageId": saved.json()["id"]}
    made = await _fourthwall(
        sandbox, "POST", sketch["path"], {**sketch["request"], "regions": [region]}
    )
    assert made.status_code == 201, made.text


async def test_the_upload_url_has_its_own_limit(sandbox: SandboxHandle) -> None:
    ask = documented("fourthwall_request_upload_url")
    answers = [await _fourthwall(sandbox, "POST", ask["path"], ask["request"]) for _ in range(21)]
    assert [a.status_code for a in answers] == [200] * 20 + [429]
    _same_shape(answers[-1], documented("fourthwall_too_many_requests"))


async def test_the_sandboxs_webhook_is_the_documented_product_updated(
    sandbox: SandboxHandle,
) -> None:
    sketch = documented("fourthwall_create_customization")
    made = (await _fourthwall(sandbox, "POST", sketch["path"], sketch["request"])).json()
    request = {"type": "customization", "customizationId": made["customizationId"]}
    created = await _fourthwall(sandbox, "POST", "/open-api/v1.0/products", request)
    sent = await sandbox.change_product(created.json()["productId"], stock="SOLD_OUT")
    envelope = msgspec.json.decode(sent["body"])
    example = documented("fourthwall_webhook_product_updated")["request"]
    assert not undocumented(envelope, example) and not missing(envelope, example)
    (product,) = envelope["data"]["product"]["results"]
    assert (product["state"], product["access"]) == ({"type": "SOLD_OUT"}, {"type": "HIDDEN"})
    secret = sandbox.config.shops[0].webhook_secret or ""
    digest = hmac.new(secret.encode(), sent["body"].encode(), hashlib.sha256).digest()
    assert sent["signature"] == base64.b64encode(digest).decode()


def _signed(
    method: str,
    path: str,
    *,
    date: datetime | None = None,
    content_type: str = CONTENT_TYPE,
) -> dict[str, str]:
    """The headers "API principles" asks for, computed here from the page."""
    when = format_datetime(date or datetime.now(UTC), usegmt=True)
    message = f"{method}\n{content_type}\n{when}\n{path}".encode()
    sig = base64.b64encode(hmac.new(KEY.encode(), message, hashlib.sha256).digest()).decode()
    return {"Content-Type": content_type, "Date": when, "Authorization": f"ApiAuth {TRACKER}:{sig}"}


async def _bulk(sandbox: SandboxHandle, lines: list[Any], strategy: str) -> httpx.Response:
    example = documented("luigisbox_bulk_create")
    path = example["path"].replace("{TRACKER_ID}", TRACKER)
    body = b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n"
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        return await http.post(
            path,
            params={"conflict_strategy": strategy},
            content=body,
            headers=_signed("POST", path, content_type="application/x-ndjson"),
        )


async def test_a_bulk_create_is_taken_as_its_page_documents(sandbox: SandboxHandle) -> None:
    example = documented("luigisbox_bulk_create")
    lines = example["request_lines"]
    _same_shape(await _bulk(sandbox, lines, "ignore"), example)
    listing = documented("luigisbox_get_scopes")
    listed = await _luigisbox(sandbox, {**listing, "query": {"tag": ["bulk"]}})
    assert listed.json()["pagination"]["total"] == 2
    assert (await _bulk(sandbox, lines, "raise")).status_code == 409  # both are there
    assert (await _bulk(sandbox, lines, "ignore")).status_code == 200  # kept as they are
    listed = await _luigisbox(sandbox, {**listing, "query": {"tag": ["bulk"]}})
    assert listed.json()["pagination"]["total"] == 2
    bad = [{**lines[0], "target_identity": "/p/3/", "pin_definitions": [{"position": 1}]}]
    assert (await _bulk(sandbox, bad, "ignore")).status_code == 422
    too_many = [{**lines[0], "target_identity": f"/p/x{n}/"} for n in range(5001)]
    assert (await _bulk(sandbox, too_many, "ignore")).status_code == 413


async def test_the_client_bulk_creates_and_finds_every_page_by_tag(sandbox: SandboxHandle) -> None:
    client = _luigisbox_client(sandbox.url)
    requests = [
        ScopeRequest(
            model="basket",
            target_type="item",
            target_identity=f"/p/{n}/",
            tags=["batch-7"],
            pin_definitions=[PinDefinition(position=1, pin_type="item", pin_identity="/p/9/")],
        )
        for n in range(150)
    ]
    await client.create_scopes("shop-1", requests)
    found = await client.scopes_tagged("shop-1", "batch-7")
    assert sorted(s.target_identity or "" for s in found) == sorted(f"/p/{n}/" for n in range(150))


async def _luigisbox(
    sandbox: SandboxHandle, example: dict[str, Any], scope_id: str = "", body: Any = None
) -> httpx.Response:
    path = example["path"].replace("{TRACKER_ID}", TRACKER).replace("{CUSTOMIZATION_ID}", scope_id)
    payload = example.get("request") if body is None else body
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        return await http.request(
            example["method"],
            path,
            params=example.get("query"),
            content=b"" if payload is None else msgspec.json.encode(payload),
            headers=_signed(example["method"], path),  # the listing: signed without its query
        )


async def test_luigis_box_answers_as_its_pages_document(sandbox: SandboxHandle) -> None:
    create = documented("luigisbox_create_scope")
    tagged = {**create["request"], "tags": ["summer"]}
    tagged["pin_definitions"] = [{"position": 1, "pin_type": "item", "pin_identity": "/p/9"}]
    made = await _luigisbox(sandbox, create, body=tagged)
    _same_shape(made, create)
    scope_id = made.json()["id"]
    _same_shape(
        await _luigisbox(sandbox, documented("luigisbox_invalid_pin_definition")),
        documented("luigisbox_invalid_pin_definition"),
    )
    one = documented("luigisbox_get_scope")
    got = await _luigisbox(sandbox, one, scope_id)
    _same_shape(got, one)
    listing = documented("luigisbox_get_scopes")
    listed = await _luigisbox(sandbox, listing)
    _same_shape(listed, listing)
    assert listed.json()["pagination"] == {"total": 1}
    update = documented("luigisbox_update_scope")
    replaced = await _luigisbox(sandbox, update, scope_id)
    _same_shape(replaced, update)
    after = (await _luigisbox(sandbox, one, scope_id)).json()
    assert (after["tags"], after["pin_definitions"]) == (
        ["autumn"],
        update["request"]["pin_definitions"],
    )
    assert (await _luigisbox(sandbox, listing)).json()["pagination"] == {"total": 0}  # untagged
    gone = await _luigisbox(sandbox, update, "0b1c2d3e-0000-4000-8000-000000000000")
    assert gone.status_code == 404
    content = documented("luigisbox_content_update")
    _same_shape(await _luigisbox(sandbox, content), content)


def _luigisbox_client(url: str, skew_s: float = 0.0) -> LuigisBoxClient:
    account = LuigisBoxAccount(TRACKER, Secret(KEY))
    moment = lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=skew_s), usegmt=True)  # noqa: E731
    return LuigisBoxClient(new_http_client(url, 5), lambda shop: account, date=moment)


@pytest.mark.parametrize(("skew_s", "taken"), [(-3, True), (3, True), (-10, False), (10, False)])
async def test_a_date_more_than_seconds_off_is_refused(
    sandbox: SandboxHandle, skew_s: float, taken: bool
) -> None:
    """ "We tolerate ±5 second inaccuracies": a clock ten seconds off is refused."""
    client = _luigisbox_client(sandbox.url, skew_s)
    request = ScopeRequest(
        model="basket",
        target_type="all",
        pin_definitions=[PinDefinition(position=1, pin_type="item", pin_identity="p")],
    )
    if taken:
        assert (await client.create_scope("shop-1", request)).id
    else:
        with pytest.raises(UpstreamError) as refused:
            await client.create_scope("shop-1", request)
        assert refused.value.status == 401


HOSTILE = ["../customizations", "a/b", "x?y=1", "%2F", "prd_1#frag", "..%2Fproducts"]


@pytest.mark.parametrize("product_id", HOSTILE)
async def test_an_id_never_changes_which_fourthwall_endpoint_is_called(
    sandbox: SandboxHandle, product_id: str
) -> None:
    client = FourthwallClient(
        new_http_client(sandbox.url, 5),
        lambda shop: FourthwallAuth("user-1", Secret("fw-password-1"), None),
    )
    with pytest.raises(UpstreamError) as caught:
        await client.set_product_state("shop-1", product_id, "HIDDEN")
    assert caught.value.status == 404 and not caught.value.retryable
    records = await sandbox.records()
    assert not records["customizations"] and not records["products"]
    assert {c["endpoint"] for c in records["calls"]} <= {
        "/open-api/v1.0/products/{productId}/state"
    }


@pytest.mark.parametrize("scope_id", [*HOSTILE, "..", "."])
async def test_an_id_never_changes_which_luigisbox_scope_is_deleted(
    sandbox: SandboxHandle, scope_id: str
) -> None:
    client = _luigisbox_client(sandbox.url)
    request = ScopeRequest(
        model="basket",
        target_type="all",
        pin_definitions=[PinDefinition(position=1, pin_type="item", pin_identity="p")],
    )
    kept = await client.create_scope("shop-1", request)
    if scope_id in ("..", "."):  # a dot-segment cannot be one path segment: nothing is sent
        with pytest.raises(UpstreamError) as refused:
            await client.delete_scope("shop-1", scope_id)
        assert (refused.value.code, refused.value.retryable) == ("UNSAFE_ID", False)
    else:  # the encoded path is the signed one: a 404, never a 401 or another scope
        assert await client.delete_scope("shop-1", scope_id) is False
        assert await client.get_scope("shop-1", scope_id) is None
    records = await sandbox.records()
    assert [s["id"] for s in records["scopes"]] == [kept.id]
    assert all(c["status"] != 401 for c in records["calls"]), records["calls"]


async def test_the_token_endpoint_answers_as_its_pages_and_rfc_6749_say() -> None:
    config = sandbox_config(1)
    config.app = App(client_id="app_12345", client_secret="<string>")
    config.shops[0] = msgspec.structs.replace(config.shops[0], app_refresh_token="<string>")
    example = documented("fourthwall_exchange_token_refresh")
    async with running_sandbox(config) as running, httpx.AsyncClient(base_url=running.url) as http:
        answer = await http.post(
            example["path"],
            content=urlencode(example["request"]).encode(),
            headers={"Content-Type": example["content_type"]},
        )
        assert answer.status_code == example["status"], answer.text
        body = answer.json()
        assert not missing(body, example["response"])
        assert set(undocumented(body, example["response"])) == {
            f"$.{key}: not documented" for key in example["assumed"]
        }
        assert not undocumented(body, {**example["response"], **example["assumed"]})
        # the refresh token was spent (rotated): used again, it is the documented refusal
        again = await http.post(
            example["path"],
            content=urlencode(example["request"]).encode(),
            headers={"Content-Type": example["content_type"]},
        )
        _same_shape(again, documented("fourthwall_exchange_token_invalid_grant"))
        # the access token it gave opens the Open API; an unknown one is a 401
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert (
            await http.get("/open-api/v1.0/products/prd_none", headers=headers)
        ).status_code == 404
        headers = {"Authorization": "Bearer not-a-token"}
        assert (
            await http.get("/open-api/v1.0/products/prd_none", headers=headers)
        ).status_code == 401
