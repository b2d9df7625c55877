"""Shared pieces of both clients: the pooled httpx client and turning failures into errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import msgspec
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from consumers.ports import Api, UpstreamError
from contracts.paths import UnsafeId

T = TypeVar("T")

# Called after every upstream call: (api, endpoint, status or None, seconds).
CallObserver = Callable[[str, str, int | None, float], None]


def new_http_client(base_url: str, timeout_s: float) -> httpx.AsyncClient:
    """One pooled client per upstream per process."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "merch-pipeline"},
    )


UNSAFE_ID = "UNSAFE_ID"


def safe_path(api: Api, build: Callable[[], str]) -> str:
    """The path ``build`` makes, its ids percent-encoded; an id that cannot be one path segment
    (``""``, ``.``, ``..``) is a permanent ``UpstreamError`` and nothing is sent."""
    try:
        return build()
    except UnsafeId as exc:
        raise UpstreamError(
            api=api, status=None, code=UNSAFE_ID, detail=str(exc), retryable=False
        ) from exc


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def send(
    api: Api,
    request: Callable[[], Awaitable[httpx.Response]],
    *,
    tracer: Tracer | None = None,
    method: str = "POST",
    route: str = "",
    host: str = "",
) -> httpx.Response:
    """Run ``request`` under a CLIENT span (method, route template, host, status: never a
    header, a body or a credential); a network failure becomes a retryable
    ``UpstreamError``."""
    if tracer is None:
        return await _send(api, request)
    attributes = {
        "http.request.method": method,
        "url.template": route,
        "server.address": host,
        "merch.upstream": api,
    }
    name = f"{method} {route}"
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
        try:
            response = await _send(api, request)
        except UpstreamError as exc:
            span.set_status(StatusCode.ERROR, exc.code)
            span.set_attribute("error.type", exc.code)
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(StatusCode.ERROR, str(response.status_code))
            span.set_attribute("error.type", str(response.status_code))
        return response


async def _send(api: Api, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    try:
        return await request()
    except httpx.TimeoutException as exc:
        raise UpstreamError(
            api=api, status=None, code="TIMEOUT", detail=type(exc).__name__, retryable=True
        ) from None
    except httpx.TransportError as exc:
        raise UpstreamError(
            api=api,
            status=None,
            code="CONNECTION_ERROR",
            detail=f"{type(exc).__name__}: {exc}",
            retryable=True,
        ) from None


def decode_success(api: Api, response: httpx.Response, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except msgspec.MsgspecError as exc:
        # A 2xx we cannot read may still have had its effect: retrying is the only safe move,
        # and the ledger (not this client) prevents a duplicate.
        raise UpstreamError(
            api=api,
            status=response.status_code,
            code="INVALID_RESPONSE",
            detail=str(exc),
            retryable=True,
        ) from None
