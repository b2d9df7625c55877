"""Fourthwall Open API client: create customization, create product from it, hide or publish
a product, read a product template (kept for ``TEMPLATE_TTL_S``), upload an image."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import msgspec
from opentelemetry.trace import Tracer

from consumers.ports import MissingCredentials, Picture, UpstreamError
from contracts.fourthwall import (
    CUSTOMIZATIONS_PATH,
    MEDIA_IMAGES_PATH,
    MEDIA_UPLOAD_ENDPOINT,
    MEDIA_UPLOAD_URL_PATH,
    PRODUCT_STATE_ENDPOINT,
    PRODUCT_TEMPLATE_ENDPOINT,
    PRODUCTS_PATH,
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductResponseV1,
    MediaImageV1,
    MediaUploadUrlRequestV1,
    MediaUploadUrlResponseV1,
    ProductLifecycleState,
    ProductTemplateV1,
    ProductV1,
    SaveMediaImageRequestV1,
    UpdateProductStateRequestV1,
    decode_error_body,
    product_state_path,
    product_template_path,
)
from service.upstreams.app_tokens import AppTokens
from service.upstreams.credentials import AppGrant, FourthwallAuth
from service.upstreams.http import CallObserver, decode_success, retry_after_s, safe_path, send
from service.upstreams.taxonomy import classify_fourthwall

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
# A template changes seldom (a new color, an area); a design checked against one up to ten
# minutes old is refused wrongly at worst until then, and the heavy call judges anyway.
TEMPLATE_TTL_S = 600.0
TEMPLATES_KEPT = 1024


def error_from_response(response: httpx.Response) -> UpstreamError:
    body = decode_error_body(response.content)
    status = response.status_code
    code = body.code if body else f"HTTP_{status}"
    detail = (
        msgspec.json.encode(body.context).decode()
        if body and body.context
        else (response.reason_phrase or f"HTTP {status}")
    )
    return UpstreamError(
        api="fourthwall",
        status=status,
        code=code,
        detail=detail[:500],
        retryable=classify_fourthwall(status, body.code if body else None) == "transient",
        retry_after_s=retry_after_s(response),
    )


class FourthwallClient:
    """Implements ``consumers.ports.Fourthwall`` over one pooled httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        auth_for: Callable[[str], FourthwallAuth | AppGrant | None],
        observe: CallObserver | None = None,
        tracer: Tracer | None = None,
        app_tokens: AppTokens | None = None,
    ) -> None:
        self._http = http
        self._auth_for = auth_for
        self._app_tokens = app_tokens
        self._observe = observe
        self._tracer = tracer
        self._templates: dict[str, tuple[float, ProductTemplateV1]] = {}

    async def create_customization(
        self, shop_id: str, request: CreateCustomizationRequestV1
    ) -> CreateCustomizationResponseV1:
        return await self._request(
            shop_id, CUSTOMIZATIONS_PATH, _encoder.encode(request), CreateCustomizationResponseV1
        )

    async def create_product(
        self, shop_id: str, request: CreateCustomizationProductRequestV1
    ) -> CreateProductResponseV1:
        return await self._request(
            shop_id, PRODUCTS_PATH, _encoder.encode(request), CreateProductResponseV1
        )

    async def set_product_state(
        self, shop_id: str, product_id: str, state: ProductLifecycleState
    ) -> ProductV1:
        """PUBLIC ⇄ HIDDEN (idempotent; a general call, not a heavy one)."""
        body = _encoder.encode(UpdateProductStateRequestV1(state=state))
        path = safe_path("fourthwall", lambda: product_state_path(product_id))
        return await self._request(
            shop_id, path, body, ProductV1, method="PUT", endpoint=PRODUCT_STATE_ENDPOINT
        )

    async def product_template(self, shop_id: str, template_id: str) -> ProductTemplateV1:
        """ "Get product template" (public; sent with the shop's credentials when it has some,
        so the call counts where the general limit is kept), answered from memory for
        ``TEMPLATE_TTL_S``."""
        now = time.monotonic()
        kept = self._templates.get(template_id)
        if kept is not None and now - kept[0] < TEMPLATE_TTL_S:
            return kept[1]
        path = safe_path("fourthwall", lambda: product_template_path(template_id))
        template = await self._request(
            shop_id,
            path,
            b"",
            ProductTemplateV1,
            method="GET",
            endpoint=PRODUCT_TEMPLATE_ENDPOINT,
            anonymous=True,
        )
        if len(self._templates) >= TEMPLATES_KEPT:
            self._templates.pop(next(iter(self._templates)))
        self._templates[template_id] = (now, template)
        return template

    async def upload_image(self, shop_id: str, picture: Picture) -> MediaImageV1:
        """ "Request a pre-signed upload URL" (20 a minute per shop), PUT the bytes there (no
        Authorization: the URL is the credential), then "Save an uploaded image to the media
        library" (the general limit): the saved image's ``id`` is a region's ``imageId``."""
        file_name = f"{picture.content_hash[:32]}.{picture.extension}"
        ticket = await self._request(
            shop_id,
            MEDIA_UPLOAD_URL_PATH,
            _encoder.encode(
                MediaUploadUrlRequestV1(
                    content_type=picture.content_type,
                    file_name=file_name,
                    size=len(picture.data),
                )
            ),
            MediaUploadUrlResponseV1,
        )
        await self._put_upload(ticket.upload_url, picture)
        saved = SaveMediaImageRequestV1(
            file_url=ticket.file_url, width=picture.width, height=picture.height
        )
        return await self._request(shop_id, MEDIA_IMAGES_PATH, _encoder.encode(saved), MediaImageV1)

    async def _put_upload(self, upload_url: str, picture: Picture) -> None:
        # Fourthwall's examples echo the declared size as the signed URL's content-length range
        # (the URL is signed for it): the PUT must send it, and the same Content-Type.
        headers = {
            "Content-Type": picture.content_type,
            "x-goog-content-length-range": f"0,{len(picture.data)}",
        }
        response = await self._send("PUT", upload_url, picture.data, MEDIA_UPLOAD_ENDPOINT, headers)
        if response.status_code >= 300:
            # An expired or refused URL: a new one is asked for on the next attempt.
            raise UpstreamError(
                api="fourthwall",
                status=response.status_code,
                code=f"MEDIA_UPLOAD_HTTP_{response.status_code}",
                detail="the pre-signed upload URL refused the artwork",
                retryable=response.status_code >= 500 or response.status_code in (403, 408),
                retry_after_s=retry_after_s(response),
            )

    async def _request(
        self,
        shop_id: str,
        path: str,
        body: bytes,
        kind: type[T],
        method: str = "POST",
        endpoint: str | None = None,
        anonymous: bool = False,
    ) -> T:
        auth = self._auth_for(shop_id)
        if auth is None and not anonymous:
            raise MissingCredentials("fourthwall", shop_id)
        grant = auth if isinstance(auth, AppGrant) else None
        token = await self._app_token(grant, anonymous) if grant else None
        response = await self._send(method, path, body, endpoint, _headers(auth, token))
        if response.status_code == 401 and grant is not None and token is not None:
            # An app token Fourthwall no longer takes (revoked, expired early): one refresh
            # (shared with every replica) and one retry; a second 401 is the answer.
            assert self._app_tokens is not None
            await self._app_tokens.rejected(grant, token)
            token = await self._app_token(grant, anonymous)
            response = await self._send(method, path, body, endpoint, _headers(auth, token))
        if response.status_code >= 400:
            raise error_from_response(response)
        return decode_success("fourthwall", response, kind)

    async def _app_token(self, grant: AppGrant, anonymous: bool) -> str | None:
        """The shop's app access token; for a public call, None (sent without credentials)
        when there is none to be had."""
        if self._app_tokens is None:
            if anonymous:
                return None
            raise MissingCredentials("fourthwall", grant.shop_id)
        try:
            return await self._app_tokens.bearer(grant)
        except UpstreamError:
            if anonymous:
                return None
            raise

    async def _send(
        self, method: str, url: str, body: bytes, endpoint: str | None, headers: dict[str, str]
    ) -> httpx.Response:
        """One call (an Open API path, or an absolute URL such as a pre-signed upload URL)
        under a CLIENT span, observed by its endpoint template: never by the URL itself."""
        started = time.monotonic()
        status: int | None = None
        try:
            response = await send(
                "fourthwall",
                lambda: self._http.request(method, url, content=body, headers=headers),
                tracer=self._tracer,
                method=method,
                route=endpoint or url,
                host=httpx.URL(url).host or self._http.base_url.host,
            )
            status = response.status_code
            return response
        finally:
            if self._observe:
                self._observe("fourthwall", endpoint or url, status, time.monotonic() - started)


def _headers(auth: FourthwallAuth | AppGrant | None, token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if isinstance(auth, FourthwallAuth):
        headers["Authorization"] = auth.header()
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers
