"""Luigi's Box client: put a product into the catalogue, create a recommender pin scope, and find
one by tag; HMAC-signed."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import msgspec
from opentelemetry.trace import Tracer

from consumers.ports import MissingCredentials, UpstreamError
from contracts.luigisbox import (
    BULK_MAX_SCOPES,
    CONTENT_PATH,
    CONTENT_TYPE,
    NDJSON,
    ContentObject,
    ContentRef,
    ContentRemoval,
    ContentResult,
    ContentUpdate,
    ScopeList,
    ScopeRequest,
    ScopeResponse,
    bulk_scopes_path,
    decode_error_body,
    scope_path,
    scopes_path,
)
from service.upstreams import luigisbox_auth
from service.upstreams.credentials import LuigisBoxAccount
from service.upstreams.http import CallObserver, decode_success, retry_after_s, safe_path, send
from service.upstreams.taxonomy import classify_luigisbox

_encoder = msgspec.json.Encoder()


CONTENT_REJECTED = "LUIGISBOX_CONTENT_REJECTED"


def error_from_response(response: httpx.Response, content: bool = False) -> UpstreamError:
    """The error an answer means; for a content call, ``LUIGISBOX_CONTENT_HTTP_<status>``, or
    ``LUIGISBOX_CONTENT_REJECTED`` when the answer names the object's own error."""
    body = decode_error_body(response.content)
    status = response.status_code
    detail = body.reason if body and body.reason else (response.reason_phrase or f"HTTP {status}")
    if body and body.exception_details:
        detail = f"{detail}: {msgspec.json.encode(body.exception_details).decode()}"
    elif content and (refused := _content_errors(response.content)):
        # a content answer that names the object's error: the object itself is refused
        return UpstreamError(
            api="luigisbox",
            status=status,
            code=CONTENT_REJECTED,
            detail=refused[:500],
            retryable=False,
        )
    return UpstreamError(
        api="luigisbox",
        status=status,
        code=f"LUIGISBOX_CONTENT_HTTP_{status}" if content else f"LUIGISBOX_HTTP_{status}",
        detail=detail[:500],
        retryable=classify_luigisbox(status) == "transient",
        retry_after_s=retry_after_s(response),
    )


LISTING_PAGE = 100  # scopes asked for per page of the listing


class LuigisBoxClient:
    """Implements ``consumers.ports.LuigisBox``. Signs every request with a fresh Date."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        account_for: Callable[[str], LuigisBoxAccount | None],
        observe: CallObserver | None = None,
        date: Callable[[], str] = luigisbox_auth.now_http_date,
        tracer: Tracer | None = None,
    ) -> None:
        self._http = http
        self._account_for = account_for
        self._observe = observe
        self._date = date
        self._tracer = tracer

    async def create_scope(self, shop_id: str, request: ScopeRequest) -> ScopeResponse:
        account = self._account(shop_id)
        path = scope_path(account.tracker_id)
        response = await self._request(
            account, path, _encoder.encode(request), "/v1/recommender/pin/{tracker}/scope"
        )
        return decode_success("luigisbox", response, ScopeResponse)

    async def create_scopes(self, shop_id: str, requests: list[ScopeRequest]) -> None:
        """ "Bulk Create Customizations": one customization a line (NDJSON), at most 5,000 a
        call, ``conflict_strategy=ignore`` (what Luigi's Box holds already is kept: never
        someone else's scope replaced); 200 with ``{}``, no ids. Signed without the query."""
        account = self._account(shop_id)
        path = bulk_scopes_path(account.tracker_id)
        for start in range(0, len(requests), BULK_MAX_SCOPES):
            body = b"\n".join(_encoder.encode(r) for r in requests[start : start + BULK_MAX_SCOPES])
            await self._request(
                account,
                path,
                body + b"\n",
                "/v1/recommender/pin/{tracker}/scopes/_bulk",
                {"conflict_strategy": "ignore"},
                content_type=NDJSON,
            )

    async def scopes_tagged(self, shop_id: str, tag: str) -> list[ScopeResponse]:
        """ "Get Customizations" filtered by ``tag``, every page (``limit``/``offset``)."""
        account = self._account(shop_id)
        path = scopes_path(account.tracker_id)
        found: list[ScopeResponse] = []
        offset = 0
        while True:
            query = {"tag": tag, "limit": str(LISTING_PAGE), "offset": str(offset)}
            response = await self._request(
                account, path, b"{}", "/v1/recommender/pin/{tracker}/scopes", query
            )
            page = decode_success("luigisbox", response, ScopeList)
            found += [s for s in page.results if tag in (s.tags or [])]
            offset += len(page.results)
            total = page.pagination.total
            if len(page.results) < LISTING_PAGE or (total is not None and offset >= total):
                return found

    async def find_scope(self, shop_id: str, tag: str) -> ScopeResponse | None:
        """The listing filtered by ``tag`` ("Get Customizations"): the scope a create whose
        answer was lost made, or None. The query string is not part of the signed path."""
        account = self._account(shop_id)
        path = scopes_path(account.tracker_id)
        response = await self._request(
            account, path, b"{}", "/v1/recommender/pin/{tracker}/scopes", {"tag": tag}
        )
        listed = decode_success("luigisbox", response, ScopeList)
        return next((s for s in listed.results if tag in (s.tags or [])), None)

    async def get_scope(self, shop_id: str, scope_id: str) -> ScopeResponse | None:
        """ "Get Customization": the scope as Luigi's Box holds it, or None when it has none."""
        account = self._account(shop_id)
        path = safe_path("luigisbox", lambda: scope_path(account.tracker_id, scope_id))
        try:
            response = await self._request(
                account, path, b"", "/v1/recommender/pin/{tracker}/scope/{id}", method="GET"
            )
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return decode_success("luigisbox", response, ScopeResponse)

    async def replace_scope(self, shop_id: str, scope_id: str, request: ScopeRequest) -> None:
        """ "Update Customization": the scope's whole definition replaced (204)."""
        account = self._account(shop_id)
        path = safe_path("luigisbox", lambda: scope_path(account.tracker_id, scope_id))
        await self._request(
            account,
            path,
            _encoder.encode(request),
            "/v1/recommender/pin/{tracker}/scope/{id}",
            method="PUT",
        )

    async def index_content(self, shop_id: str, item: ContentObject) -> None:
        """ "Content Update" (``POST /v1/content``, a full replacement of the object). An
        answer that names the object among its errors is a permanent failure."""
        await self._put_content(shop_id, item, "POST")

    async def update_content(self, shop_id: str, item: ContentObject) -> None:
        """ "Partial Content Update" (``PATCH /v1/content``): the object's given fields change,
        the others stay."""
        await self._put_content(shop_id, item, "PATCH")

    async def _put_content(self, shop_id: str, item: ContentObject, method: str) -> None:
        account = self._account(shop_id)
        body = _encoder.encode(ContentUpdate(objects=[item]))
        response = await self._request(
            account, CONTENT_PATH, body, CONTENT_PATH, content=True, method=method
        )
        result = decode_success("luigisbox", response, ContentResult)
        if result.errors_count or result.errors:
            raise UpstreamError(
                api="luigisbox",
                status=response.status_code,
                code=CONTENT_REJECTED,
                detail=(_content_errors(response.content) or "rejected")[:500],
                retryable=False,
            )

    async def delete_scope(self, shop_id: str, scope_id: str) -> bool:
        """ "Delete Customization": True if deleted, False if Luigi's Box had no such scope
        (deleted before: the end wanted either way)."""
        account = self._account(shop_id)
        path = safe_path("luigisbox", lambda: scope_path(account.tracker_id, scope_id))
        try:
            await self._request(
                account, path, b"", "/v1/recommender/pin/{tracker}/scope/{id}", method="DELETE"
            )
        except UpstreamError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def remove_content(self, shop_id: str, refs: list[ContentRef]) -> None:
        """ "Content Removal" (``DELETE /v1/content``): the objects leave the catalogue."""
        account = self._account(shop_id)
        body = _encoder.encode(ContentRemoval(objects=refs))
        await self._request(
            account, CONTENT_PATH, body, CONTENT_PATH, content=True, method="DELETE"
        )

    def _account(self, shop_id: str) -> LuigisBoxAccount:
        account = self._account_for(shop_id)
        if account is None:
            raise MissingCredentials("luigisbox", shop_id)
        return account

    async def _request(
        self,
        account: LuigisBoxAccount,
        path: str,
        body: bytes,
        endpoint: str,
        query: dict[str, str] | None = None,
        content: bool = False,
        method: str = "POST",
        content_type: str = CONTENT_TYPE,
    ) -> httpx.Response:
        """A request (POST unless told) signed with a fresh Date; an error answer raises
        ``UpstreamError`` (see ``error_from_response``)."""
        date = self._date()
        sig = luigisbox_auth.signature(
            account.private_key.reveal(), method, content_type, date, path
        )
        headers = {
            "Content-Type": content_type,
            "Date": date,
            "Authorization": luigisbox_auth.authorization(account.tracker_id, sig),
        }
        started = time.monotonic()
        status: int | None = None
        try:
            response = await send(
                "luigisbox",
                lambda: self._http.request(
                    method, path, content=body, headers=headers, params=query
                ),
                tracer=self._tracer,
                method=method,
                route=endpoint,
                host=self._http.base_url.host,
            )
            status = response.status_code
        finally:
            if self._observe:
                self._observe("luigisbox", endpoint, status, time.monotonic() - started)
        if response.status_code >= 400:
            raise error_from_response(response, content)
        return response


def _content_errors(body: bytes) -> str:
    """Each rejected object's identity and reason, from a content answer ('' if none)."""
    try:
        result = msgspec.json.decode(body, type=ContentResult)
    except msgspec.MsgspecError:
        return ""
    return "; ".join(
        f"{identity}: {e.reason or e.type} {msgspec.json.encode(e.caused_by).decode()}".strip()
        for identity, e in result.errors.items()
    )
