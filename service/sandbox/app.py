"""The sandbox's HTTP surface (Litestar): both upstreams plus ``/_sandbox/*`` for tests."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, get, post, put, route
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from service.sandbox.config import Faults, SandboxConfig
from service.sandbox.fourthwall import Answer, Changed, FourthwallSandbox
from service.sandbox.luigisbox import CONTENT_PATH, NDJSON, LuigisBoxSandbox, scopes_path
from service.sandbox.media import STORAGE, MediaSandbox, artwork_png
from service.sandbox.platform_tokens import TOKEN
from service.sandbox.shapes import (
    CUSTOMIZATIONS,
    HEAVY,
    MEDIA_IMAGES,
    MEDIA_UPLOAD_URL,
    PRODUCT,
    PRODUCT_STATE,
    PRODUCT_TEMPLATE,
    PRODUCTS,
)
from service.sandbox.signing import (
    FOURTHWALL_APP_SIGNATURE_HEADER,
    FOURTHWALL_SIGNATURE_HEADER,
    fourthwall_webhook_signature,
)


class Sandbox:
    """Both fakes, the injected faults and the record of every call."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.fourthwall = FourthwallSandbox(config)
        self.luigisbox = LuigisBoxSandbox(config)
        self.media = MediaSandbox(config)
        self.artwork_fetches: list[str] = []  # the artwork names served, in order
        self.calls: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []  # the webhooks delivered, and their answers
        self._random = random.Random(config.faults.seed)

    def record(self, api: str, endpoint: str, account: str | None, answer: Answer) -> Answer:
        status, body, _ = answer
        self.calls.append(
            {
                "seq": len(self.calls) + 1,
                "at": time.time(),
                "api": api,
                "endpoint": endpoint,
                "account": account,
                "status": status,
                "code": body.get("code"),
            }
        )
        return answer

    async def trouble(self, endpoint: str) -> Answer | None:
        faults = self.config.faults
        if faults.endpoints and endpoint not in faults.endpoints:
            return None
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        roll = self._random.random()
        if roll < faults.error_rate_5xx:
            return 503, {"code": "SERVICE_UNAVAILABLE"}, {}
        if roll < faults.error_rate_5xx + faults.rate_429:
            return (
                429,
                {"code": "OPEN_API_TOO_MANY_REQUESTS", "title": "Too many requests", "status": 429},
                {"Retry-After": "1"},
            )
        return None

    def answer_lost(self, endpoint: str) -> bool:
        faults = self.config.faults
        if faults.endpoints and endpoint not in faults.endpoints:
            return False
        return self._random.random() < faults.lost_answer_rate

    def records(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "customizations": self.fourthwall.customizations,
            "products": self.fourthwall.products,
            "scopes": self.luigisbox.scopes,
            "content": self.luigisbox.content,
            "webhooks": self.webhooks,
            "media_images": self.media.images,
            "artwork_fetches": self.artwork_fetches,
        }


def _respond(answer: Answer) -> Response[bytes]:
    status, body, headers = answer
    return Response(
        b"" if status == 204 else msgspec.json.encode(body),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


async def _template(sandbox: Sandbox, request: Request[Any, Any, Any]) -> Answer:
    """ "Get product template" is public: no credentials needed; with a shop's, the call
    counts against that shop's general limit."""
    shop_id = sandbox.fourthwall.authenticate(request.headers.get("authorization"))
    if shop_id is not None:
        limited = sandbox.fourthwall.rate_limit(shop_id, time.monotonic(), heavy=False)
        if limited is not None:
            return sandbox.record("fourthwall", PRODUCT_TEMPLATE, shop_id, limited)
    answer = sandbox.fourthwall.get_template(request.path_params["template_id"])
    return sandbox.record("fourthwall", PRODUCT_TEMPLATE, shop_id, answer)


async def _fourthwall(sandbox: Sandbox, request: Request[Any, Any, Any], endpoint: str) -> Answer:
    shop_id = sandbox.fourthwall.authenticate(request.headers.get("authorization"))
    if shop_id is None:
        return sandbox.record(
            "fourthwall",
            endpoint,
            None,
            (401, {"code": "UNAUTHORIZED", "title": "Unauthorized"}, {}),
        )
    injected = await sandbox.trouble(endpoint)
    if injected is not None:
        return sandbox.record("fourthwall", endpoint, shop_id, injected)
    limited = sandbox.fourthwall.rate_limit(shop_id, time.monotonic(), endpoint in HEAVY)
    if limited is not None:
        return sandbox.record("fourthwall", endpoint, shop_id, limited)
    body = await request.body()
    if endpoint == PRODUCT_STATE:
        product_id = request.path_params["product_id"]
        answer = sandbox.fourthwall.set_state(shop_id, product_id, body)
        return sandbox.record("fourthwall", endpoint, shop_id, answer)
    if endpoint == PRODUCT:
        answer = sandbox.fourthwall.get_product(shop_id, request.path_params["product_id"])
        return sandbox.record("fourthwall", endpoint, shop_id, answer)
    handler = (
        sandbox.fourthwall.create_customization
        if endpoint == CUSTOMIZATIONS
        else sandbox.fourthwall.create_product
    )
    answer = handler(shop_id, body)
    if answer[0] < 300 and sandbox.answer_lost(endpoint):
        # Done on Fourthwall's side, but the caller never hears: a gateway timeout.
        answer = (504, {"code": "GATEWAY_TIMEOUT"}, {})
    return sandbox.record("fourthwall", endpoint, shop_id, answer)


async def _media(sandbox: Sandbox, request: Request[Any, Any, Any], endpoint: str) -> Answer:
    """The media library's two calls: the upload URL on its own limit (and the general one),
    saving an image on the general limit."""
    shop_id = sandbox.fourthwall.authenticate(request.headers.get("authorization"))
    if shop_id is None:
        answer: Answer = (401, {"code": "UNAUTHORIZED", "title": "Unauthorized"}, {})
        return sandbox.record("fourthwall", endpoint, None, answer)
    injected = await sandbox.trouble(endpoint)
    if injected is not None:
        return sandbox.record("fourthwall", endpoint, shop_id, injected)
    now = time.monotonic()
    limited = sandbox.fourthwall.rate_limit(shop_id, now, heavy=False)
    if limited is None and endpoint == MEDIA_UPLOAD_URL:
        wait = sandbox.media.uploads.admit(shop_id, now)
        if wait is not None:
            limited = (
                429,
                {"code": "OPEN_API_TOO_MANY_REQUESTS", "title": "Too many requests", "status": 429},
                {"Retry-After": str(max(1, round(wait + 0.5)))},
            )
    if limited is not None:
        return sandbox.record("fourthwall", endpoint, shop_id, limited)
    body = await request.body()
    if endpoint == MEDIA_UPLOAD_URL:
        base = str(request.base_url).rstrip("/")
        answer = sandbox.media.request_upload(shop_id, body, base)
    else:
        answer = sandbox.media.save_image(shop_id, body)
    return sandbox.record("fourthwall", endpoint, shop_id, answer)


async def _create_scope(
    sandbox: Sandbox, request: Request[Any, Any, Any], tracker_id: str
) -> Answer:
    endpoint = "/v1/recommender/pin/{tracker}/scope"
    headers = {k.lower(): v for k, v in request.headers.items()}
    denied = sandbox.luigisbox.check_auth(tracker_id, headers, datetime.now(UTC))
    if denied is not None:
        return sandbox.record("luigisbox", endpoint, tracker_id, denied)
    injected = await sandbox.trouble(endpoint)
    if injected is not None:
        status, _, extra = injected
        answer: Answer = (status, {"reason": "Injected failure"}, extra)
        return sandbox.record("luigisbox", endpoint, tracker_id, answer)
    answer = sandbox.luigisbox.create_scope(tracker_id, await request.body())
    if answer[0] < 300 and sandbox.answer_lost(endpoint):
        answer = (504, {"reason": "Gateway timeout"}, {})  # created; the answer never comes
    return sandbox.record("luigisbox", endpoint, tracker_id, answer)


async def _one_scope(
    sandbox: Sandbox, request: Request[Any, Any, Any], tracker_id: str, scope_id: str
) -> Answer:
    """``GET``, ``PUT`` or ``DELETE`` of one scope; the signed path is the raw one, with the
    scope's id as sent."""
    method = request.method
    endpoint = f"{method} /v1/recommender/pin/{{tracker}}/scope/{{id}}"
    headers = {k.lower(): v for k, v in request.headers.items()}
    path = request.scope["raw_path"].decode()
    now = datetime.now(UTC)
    denied = sandbox.luigisbox.check_auth(tracker_id, headers, now, path, method)
    if denied is not None:
        return sandbox.record("luigisbox", endpoint, tracker_id, denied)
    luigisbox = sandbox.luigisbox
    if method == "GET":
        answer = luigisbox.get_scope(tracker_id, scope_id)
    elif method == "PUT":
        answer = luigisbox.replace_scope(tracker_id, scope_id, await request.body())
    else:
        answer = luigisbox.delete_scope(tracker_id, scope_id)
    return sandbox.record("luigisbox", endpoint, tracker_id, answer)


async def _content(sandbox: Sandbox, request: Request[Any, Any, Any]) -> Answer:
    """``/v1/content``: one path, three operations; the tracker is the signature's."""
    method = request.method
    endpoint = f"{method} {CONTENT_PATH}"
    headers = {k.lower(): v for k, v in request.headers.items()}
    tracker_id = sandbox.luigisbox.content_tracker(headers)
    now = datetime.now(UTC)
    denied = sandbox.luigisbox.check_auth(tracker_id, headers, now, CONTENT_PATH, method)
    if denied is not None:
        if denied[0] == 404:  # no tracker in the path: an unknown one is a bad signature
            denied = (401, {"reason": "Missing or invalid authentication"}, {})
        return sandbox.record("luigisbox", endpoint, tracker_id or None, denied)
    injected = await sandbox.trouble(endpoint)
    if injected is not None:
        status, _, extra = injected
        return sandbox.record(
            "luigisbox", endpoint, tracker_id, (status, {"reason": "Injected"}, extra)
        )
    updated = sandbox.luigisbox.update_content(tracker_id, method, await request.body())
    return sandbox.record("luigisbox", endpoint, tracker_id, updated)


def create_sandbox_app(config: SandboxConfig) -> Litestar:
    sandbox = Sandbox(config)
    return Litestar(
        route_handlers=[
            *_fourthwall_routes(sandbox),
            *_luigisbox_routes(sandbox),
            *_sandbox_routes(sandbox),
        ],
        openapi_config=None,
        logging_config=None,
        state=State({"sandbox": sandbox}),
    )


def _fourthwall_routes(sandbox: Sandbox) -> list[Any]:
    """Fourthwall's Open API: the calls the service makes, as their pages document them."""

    @post(CUSTOMIZATIONS, status_code=201)
    async def customizations(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _fourthwall(sandbox, request, CUSTOMIZATIONS))

    @post(PRODUCTS, status_code=201)
    async def products(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _fourthwall(sandbox, request, PRODUCTS))

    @put(f"{PRODUCTS}/{{product_id:str}}/state", status_code=200)
    async def product_state(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _fourthwall(sandbox, request, PRODUCT_STATE))

    @get(f"{PRODUCTS}/{{product_id:str}}", status_code=200)
    async def product(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _fourthwall(sandbox, request, PRODUCT))

    @post(MEDIA_UPLOAD_URL, status_code=200)
    async def media_upload_url(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _media(sandbox, request, MEDIA_UPLOAD_URL))

    @post(MEDIA_IMAGES, status_code=201)
    async def media_images(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _media(sandbox, request, MEDIA_IMAGES))

    @post(TOKEN, status_code=200)
    async def platform_token(request: Request[Any, Any, Any]) -> Response[bytes]:
        shop_id, answer = sandbox.fourthwall.tokens.exchange(
            request.headers.get("content-type", ""), await request.body(), time.monotonic()
        )
        return _respond(sandbox.record("fourthwall", TOKEN, shop_id, answer))

    @get("/open-api/v1.0/product-templates/{template_id:str}", status_code=200)
    async def product_template(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _template(sandbox, request))

    return [
        customizations,
        products,
        product_state,
        product,
        product_template,
        media_upload_url,
        media_images,
        platform_token,
    ]


def _luigisbox_routes(sandbox: Sandbox) -> list[Any]:
    """Luigi's Box: the pin scopes (one, many, the listing) and the catalogue's content."""

    @route(
        "/v1/recommender/pin/{tracker_id:str}/scope/{scope_id:str}",
        http_method=["GET", "PUT", "DELETE"],
        status_code=200,
    )
    async def one_scope(
        request: Request[Any, Any, Any], tracker_id: FromPath[str], scope_id: FromPath[str]
    ) -> Response[bytes]:
        return _respond(await _one_scope(sandbox, request, tracker_id, scope_id))

    @post("/v1/recommender/pin/{tracker_id:str}/scope", status_code=201)
    async def scope(request: Request[Any, Any, Any], tracker_id: FromPath[str]) -> Response[bytes]:
        return _respond(await _create_scope(sandbox, request, tracker_id))

    @post("/v1/recommender/pin/{tracker_id:str}/scopes", status_code=200)
    async def scopes(request: Request[Any, Any, Any], tracker_id: FromPath[str]) -> Response[bytes]:
        endpoint = "/v1/recommender/pin/{tracker}/scopes"
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = scopes_path(tracker_id)  # signed without the query string
        denied = sandbox.luigisbox.check_auth(tracker_id, headers, datetime.now(UTC), path)
        if denied is not None:
            return _respond(sandbox.record("luigisbox", endpoint, tracker_id, denied))
        query = {key: request.query_params.getall(key) for key in request.query_params}
        answer = sandbox.luigisbox.list_scopes(tracker_id, query)
        return _respond(sandbox.record("luigisbox", endpoint, tracker_id, answer))

    @post("/v1/recommender/pin/{tracker_id:str}/scopes/_bulk", status_code=200)
    async def bulk_scopes(
        request: Request[Any, Any, Any], tracker_id: FromPath[str]
    ) -> Response[bytes]:
        """ "Bulk Create Customizations": NDJSON, signed without the query string."""
        endpoint = "/v1/recommender/pin/{tracker}/scopes/_bulk"
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = f"{scopes_path(tracker_id)}/_bulk"
        denied = sandbox.luigisbox.check_auth(
            tracker_id, headers, datetime.now(UTC), path, content_type_wanted=NDJSON
        )
        if denied is not None:
            return _respond(sandbox.record("luigisbox", endpoint, tracker_id, denied))
        strategy = request.query_params.get("conflict_strategy", "raise")
        answer = sandbox.luigisbox.bulk_create(tracker_id, await request.body(), strategy)
        return _respond(sandbox.record("luigisbox", endpoint, tracker_id, answer))

    @route(CONTENT_PATH, http_method=["POST", "PATCH", "DELETE"], status_code=200)
    async def content(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _respond(await _content(sandbox, request))

    return [scope, scopes, bulk_scopes, one_scope, content]


def _sandbox_routes(sandbox: Sandbox) -> list[Any]:
    """``/_sandbox/*``: what tests and the demo ask of the sandbox (its records, faults, the
    webhook target, a shop owner's product change)."""

    @get("/_sandbox/records")
    async def records() -> Response[bytes]:
        return Response(msgspec.json.encode(sandbox.records()), media_type="application/json")

    @post("/_sandbox/faults", status_code=200)
    async def faults(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        sandbox.config.faults = msgspec.convert(data, Faults)
        sandbox._random = random.Random(sandbox.config.faults.seed)
        return dict(msgspec.to_builtins(sandbox.config.faults))

    @post("/_sandbox/webhook-url", status_code=200)
    async def webhook_url(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        sandbox.config.webhook_url = str(data["url"])
        return {"url": sandbox.config.webhook_url}

    @post("/_sandbox/fourthwall/products/{product_id:str}", status_code=200)
    async def change_product(
        product_id: FromPath[str], data: JSONBody[dict[str, Any]]
    ) -> Response[bytes]:
        return _respond(await _deliver_change(sandbox, product_id, data))

    @get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @put(f"{STORAGE}/{{token:str}}", status_code=200)
    async def storage(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        """The storage behind a pre-signed upload URL (no Authorization: the URL is it)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer = sandbox.media.put_upload(token, headers, await request.body())
        return _respond(sandbox.record("storage", f"PUT {STORAGE}/{{token}}", None, answer))

    @get("/_sandbox/artwork/{name:str}")
    async def artwork(
        name: FromPath[str], w: FromQuery[int] = 64, h: FromQuery[int] = 64
    ) -> Response[bytes]:
        """A producer's artwork host: a PNG whose content follows its name."""
        sandbox.artwork_fetches.append(name)
        return Response(artwork_png(name, w, h), media_type="image/png")

    @post("/_sandbox/fourthwall/app/{shop_id:str}/{action:str}", status_code=200)
    async def app_grant(
        shop_id: FromPath[str], action: FromPath[str], refresh_token: FromQuery[str | None] = None
    ) -> dict[str, str]:
        """``revoke``: the shop uninstalled the app (its tokens refused); ``expire``: its
        access tokens lapse now, while their holders still think them valid; ``install``
        (``?refresh_token=``): the shop installed the app again."""
        tokens = sandbox.fourthwall.tokens
        if action == "revoke":
            tokens.revoke(shop_id)
        elif action == "expire":
            tokens.expire(shop_id, time.monotonic())
        elif action == "install" and refresh_token:
            tokens.install(shop_id, refresh_token)
        else:
            raise ValueError(f"unknown action {action!r}")
        return {"shop_id": shop_id, "done": action}

    return [records, faults, webhook_url, change_product, health, storage, artwork, app_grant]


async def _deliver_change(sandbox: Sandbox, product_id: str, change: dict[str, Any]) -> Answer:
    """Change the product as its shop owner would and deliver the signed ``PRODUCT_UPDATED``
    webhook to the configured URL, as Fourthwall does (one attempt here: a test retries by
    posting the same body again). Answers what was sent and the status it got."""
    changed = sandbox.fourthwall.change(product_id, change)
    if not isinstance(changed, Changed):
        return changed
    shop_id, envelope = changed.shop_id, changed.envelope
    body = msgspec.json.encode(envelope)
    account = next(s for s in sandbox.config.shops if s.shop_id == shop_id)
    app = sandbox.config.app
    # The app's webhook when asked for (``"via": "app"``) or when the shop has no webhook of
    # its own: the same body, signed with the app's HMAC key in the app's header.
    via_app = app is not None and (change.get("via") == "app" or not account.webhook_secret)
    if via_app and app is not None:
        header, signed = (
            FOURTHWALL_APP_SIGNATURE_HEADER,
            fourthwall_webhook_signature(app.hmac_key or "", body),
        )
    else:
        header = FOURTHWALL_SIGNATURE_HEADER
        signed = fourthwall_webhook_signature(account.webhook_secret or "", body)
    status: int | None = None
    if sandbox.config.webhook_url:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.post(
                sandbox.config.webhook_url,
                content=body,
                headers={"Content-Type": "application/json", header: signed},
            )
            status = response.status_code
    sandbox.webhooks.append({"event": envelope, "status": status})
    answer = {"body": body.decode(), "signature": signed, "header": header, "status": status}
    return 200, answer, {}
