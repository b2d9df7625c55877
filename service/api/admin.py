"""``/admin``: what operators read (and, later, fix) without touching the database or broker.

Every route needs ``Authorization: Bearer <ADMIN_TOKEN>``, compared in constant time: 401
without a token, 403 with a wrong one. With no ADMIN_TOKEN configured the router is not
mounted at all (404): off, not open. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter

from consumers.ports import DesignKey
from service.quota.store import QuotaState, QuotaStore, Unlimited
from service.secrets import Secret
from service.store.ledger import DesignRow, Ledger, Step


class DesignPage(msgspec.Struct, frozen=True):
    items: list[DesignRow]
    next_cursor: str | None


class DesignDetail(msgspec.Struct, frozen=True):
    design: DesignRow
    steps: list[Step]


class ConsumerStatus(msgspec.Struct, frozen=True):
    name: str
    attached: bool
    in_flight: int


def _cursor(row: DesignRow) -> str:
    raw = msgspec.json.encode([row.created_at, row.shop_id, row.design_id, row.revision])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[float, str, str, int] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, shop, design, revision = msgspec.json.decode(raw, type=tuple[float, str, str, int])
    except (ValueError, msgspec.MsgspecError):
        raise HTTPException(
            status_code=400, detail="cursor is not one this API handed out"
        ) from None
    return created, shop, design, revision


def design_key(design_ref: str) -> DesignKey:
    """``shop_id:design_id:revision`` (the revision may be left out: 1)."""
    shop, sep, rest = design_ref.partition(":")
    design, _, revision = rest.rpartition(":") if rest.count(":") else (rest, "", "1")
    if not sep or not shop or not design or not revision.isdigit():
        raise HTTPException(
            status_code=400, detail="a design is named shop_id:design_id[:revision]"
        )
    return DesignKey(shop, design, int(revision))


def problem_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    body = {
        "type": "about:blank",
        "title": exc.__class__.__name__.replace("Exception", "")
        if exc.status_code != 400
        else "Bad Request",
        "status": exc.status_code,
        "detail": exc.detail,
        "instance": request.url.path,
    }
    return Response(
        msgspec.json.encode(body),
        status_code=exc.status_code,
        media_type="application/problem+json",
        headers=exc.headers or None,
    )


def admin_router(
    token: Secret, ledger: Ledger, quota: QuotaStore | Unlimited, readiness: Callable[[], Any]
) -> Router:
    expected = token.reveal().encode()

    def require_token(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise NotAuthorizedException(
                detail="send Authorization: Bearer <ADMIN_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.encode(), expected):
            raise PermissionDeniedException(detail="the admin token is not valid")

    @get("/designs", summary="Designs, filtered by state and shop, oldest first")
    async def list_designs(
        design_state: Annotated[str | None, QueryParameter(name="state")] = None,
        shop_id: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> DesignPage:
        rows = await ledger.designs(
            state=design_state, shop_id=shop_id, after=_after(cursor), limit=limit + 1
        )
        page = rows[:limit]
        return DesignPage(items=page, next_cursor=_cursor(page[-1]) if len(rows) > limit else None)

    @get("/designs/{design_ref:str}", summary="One design with every step it went through")
    async def get_design(design_ref: FromPath[str]) -> DesignDetail:
        key = design_key(design_ref)
        row = await ledger.design(key)
        if row is None:
            raise HTTPException(status_code=404, detail=f"no design {design_ref!r}")
        return DesignDetail(design=row, steps=await ledger.steps(key))

    @get("/shops/{shop_id:str}/quota", summary="The shop's Fourthwall quota right now")
    async def shop_quota(shop_id: FromPath[str]) -> QuotaState:
        if isinstance(quota, Unlimited):
            raise HTTPException(status_code=409, detail="the quota limiter is switched off")
        return await quota.state(shop_id)

    @get("/consumers", summary="Each consumer of this process")
    async def consumers() -> list[ConsumerStatus]:
        return [
            ConsumerStatus(name=c.name, attached=c.attached, in_flight=c.in_flight)
            for c in readiness().consumers
        ]

    return Router(
        path="/admin",
        route_handlers=[list_designs, get_design, shop_quota, consumers],
        guards=[require_token],
        tags=["admin"],
        exception_handlers={HTTPException: problem_response},
    )
