"""Shared pieces of both clients: the pooled httpx client and turning failures into errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import msgspec

from consumers.ports import Api, UpstreamError

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


async def send(api: Api, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Run ``request``; a network failure becomes a retryable ``UpstreamError``."""
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
