"""Access tokens of a Fourthwall app (OAuth), refreshed before they expire and shared by every
replica through the ledger's database (``service/store/app_tokens.py``).

A shop that installed the app has a refresh token (``fourthwall_app_refresh_token``). An access
token is taken from this process's memory while it is fresh, else from the ledger, else made:
one replica claims the shop's refresh (a lease with a fence), calls ``POST
/open-api/v1.0/platform/token`` and writes the access token and the refresh token Fourthwall
answered (which replaces the one sent: it may rotate). A replica that loses the race uses the
current access token while it is still valid, or waits (polling the row, bounded by the lease)
for the new one. A refusal (a 4xx: ``invalid_grant``, ``invalid_client``) is written to the row
and pauses the shop: every call for it fails at once with ``FOURTHWALL_APP_GRANT_REFUSED``
(permanent: the design fails, the token endpoint is not asked again) until a new installation's
refresh token is configured. No token is ever logged or put in an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec
import structlog
from opentelemetry.trace import Tracer

from consumers.ports import UpstreamError
from contracts.fourthwall_tokens import (
    DEFAULT_EXPIRES_IN_S,
    FORM_CONTENT_TYPE,
    TOKEN_PATH,
    PlatformTokenV1,
    decode_token_error,
    refresh_form,
)
from service.secrets import Secret
from service.store.app_tokens import AppTokenStore
from service.upstreams.credentials import AppGrant
from service.upstreams.http import CallObserver, retry_after_s, send

log = structlog.get_logger("merch_pipeline.fourthwall_app")
GRANT_REFUSED = "FOURTHWALL_APP_GRANT_REFUSED"
TOKEN_BUSY = "FOURTHWALL_APP_TOKEN_BUSY"  # noqa: S105 (an error code)


@dataclass(frozen=True)
class _Kept:
    access_token: str
    refresh_after: float


def refresh_after(issued_at: float, expires_in: float, margin_s: float) -> float:
    """When to refresh a token issued at ``issued_at``: ``margin_s`` before it expires, and
    no later than halfway through its life (a short-lived token is not refreshed hot)."""
    return issued_at + max(expires_in - margin_s, expires_in / 2)


def refused_error(shop_id: str, reason: str | None, at: float | None) -> UpstreamError:
    when = datetime.fromtimestamp(at or 0, UTC).isoformat(timespec="seconds")
    return UpstreamError(
        api="fourthwall",
        status=None,
        code=GRANT_REFUSED,
        detail=(
            f"shop {shop_id!r} is paused: Fourthwall refused its app grant at {when} "
            f"({reason}); install the app for the shop again, set its "
            "fourthwall_app_refresh_token, then retry the failed designs"
        ),
        retryable=False,
    )


class AppTokens:
    def __init__(
        self,
        store: AppTokenStore,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: Secret,
        *,
        margin_s: float,
        lease_s: float,
        poll_s: float = 0.05,
        clock: Callable[[], float] = time.time,
        observe: CallObserver | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._store = store
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._margin_s = margin_s
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._clock = clock
        self._observe = observe
        self._tracer = tracer
        self._kept: dict[str, _Kept] = {}
        self._seeded: set[str] = set()

    async def bearer(self, grant: AppGrant) -> str:
        """A valid access token for the shop, refreshed first when due."""
        kept = self._kept.get(grant.shop_id)
        if kept is not None and self._clock() < kept.refresh_after:
            return kept.access_token
        if grant.shop_id not in self._seeded:
            await self._store.seed(grant.shop_id, grant.refresh_token.reveal(), self._clock())
            self._seeded.add(grant.shop_id)
        deadline = self._clock() + self._lease_s
        while True:
            row = await self._store.read(grant.shop_id)
            now = self._clock()
            if row is None:  # deleted by hand: start again from the configured token
                self._seeded.discard(grant.shop_id)
                return await self.bearer(grant)
            if row.refused_at is not None:
                raise refused_error(grant.shop_id, row.refused_reason, row.refused_at)
            if row.access_token and now < row.refresh_after:
                self._kept[grant.shop_id] = _Kept(row.access_token, row.refresh_after)
                return row.access_token
            claimed = await self._store.claim(grant.shop_id, now, self._lease_s)
            if claimed is not None:
                return await self._refresh(grant.shop_id, *claimed)
            if row.access_token and now < row.expires_at:
                return row.access_token  # another replica is refreshing; this one still works
            if now >= deadline:
                raise UpstreamError(
                    api="fourthwall",
                    status=None,
                    code=TOKEN_BUSY,
                    detail="another replica's token refresh did not finish within its lease",
                    retryable=True,
                )
            await asyncio.sleep(self._poll_s)

    async def rejected(self, grant: AppGrant, access_token: str) -> None:
        """Fourthwall answered 401 to ``access_token``: the next ``bearer`` refreshes (once,
        whichever replica saw it first)."""
        self._kept.pop(grant.shop_id, None)
        await self._store.distrust(grant.shop_id, access_token, self._clock())

    async def _refresh(self, shop_id: str, fence: int, refresh_token: str) -> str:
        issued_at = self._clock()
        try:
            response = await self._call(refresh_token)
        except UpstreamError:
            await self._store.release(shop_id, fence, self._clock())
            raise
        if response.status_code < 300:
            return await self._keep(shop_id, fence, refresh_token, response, issued_at)
        if response.status_code in (408, 429) or response.status_code >= 500:
            await self._store.release(shop_id, fence, self._clock())
            raise UpstreamError(
                api="fourthwall",
                status=response.status_code,
                code=f"FOURTHWALL_APP_TOKEN_HTTP_{response.status_code}",
                detail="the token endpoint did not answer a refresh; it is asked again later",
                retryable=True,
                retry_after_s=retry_after_s(response),
            )
        reason = _reason(response, refresh_token, self._client_secret.reveal())
        at = self._clock()
        await self._store.refuse(shop_id, fence, reason, at)
        self._kept.pop(shop_id, None)
        log.error("fourthwall_app.grant_refused", shop_id=shop_id, reason=reason)
        raise refused_error(shop_id, reason, at)

    async def _keep(
        self,
        shop_id: str,
        fence: int,
        refresh_token: str,
        response: httpx.Response,
        issued_at: float,
    ) -> str:
        try:
            token = msgspec.json.decode(response.content, type=PlatformTokenV1)
        except msgspec.MsgspecError as exc:
            await self._store.release(shop_id, fence, self._clock())
            raise UpstreamError(
                api="fourthwall",
                status=response.status_code,
                code="INVALID_RESPONSE",
                detail=f"the token endpoint's answer is not a token: {type(exc).__name__}",
                retryable=True,
            ) from None
        expires_in = token.expires_in if token.expires_in else DEFAULT_EXPIRES_IN_S
        due = refresh_after(issued_at, expires_in, self._margin_s)
        await self._store.store(
            shop_id,
            fence,
            access_token=token.access_token,
            refresh_token=token.refresh_token or refresh_token,
            expires_at=issued_at + expires_in,
            refresh_after=due,
            now=self._clock(),
        )
        self._kept[shop_id] = _Kept(token.access_token, due)
        log.info(
            "fourthwall_app.refreshed",
            shop_id=shop_id,
            expires_in=expires_in,
            rotated=token.refresh_token not in (None, refresh_token),
        )
        return token.access_token

    async def _call(self, refresh_token: str) -> httpx.Response:
        form = refresh_form(self._client_id, self._client_secret.reveal(), refresh_token)
        started = time.monotonic()
        status: int | None = None
        try:
            response = await send(
                "fourthwall",
                lambda: self._http.post(
                    TOKEN_PATH, content=form, headers={"Content-Type": FORM_CONTENT_TYPE}
                ),
                tracer=self._tracer,
                route=TOKEN_PATH,
                host=self._http.base_url.host,
            )
            status = response.status_code
            return response
        finally:
            if self._observe:
                self._observe("fourthwall", TOKEN_PATH, status, time.monotonic() - started)


def _reason(response: httpx.Response, *secrets: str) -> str:
    """The refusal, as an operator reads it: the status and RFC 6749's ``error`` (and its
    description, with the refresh token and the client secret blanked should the endpoint
    ever echo them)."""
    body = decode_token_error(response.content)
    if body is None:
        return f"HTTP {response.status_code}"
    reason = f"HTTP {response.status_code} {body.error}"
    if body.error_description:
        reason += f": {body.error_description[:200]}"
    for secret in secrets:
        if secret:
            reason = reason.replace(secret, "***")
    return reason
