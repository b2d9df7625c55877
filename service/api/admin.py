"""``/admin``: what operators read and fix without touching the database or the broker.

Every route needs ``Authorization: Bearer <ADMIN_TOKEN>``, compared in constant time: 401
without a token, 403 with a wrong one. With no ADMIN_TOKEN configured the router is not
mounted at all (404): off, not open. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Literal, Protocol

import msgspec
import structlog
from aio_pika.abc import AbstractChannel
from litestar import Request, Router, delete, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter

from consumers.ports import DesignKey
from contracts.cloudevents import CloudEvent, decode_structured
from contracts.errors import ContractError
from contracts.events import DESIGN_APPROVED, decode_data, unknown_fields
from service import recovery
from service.api.app import ConsumerHealth
from service.api.problems import problem_response, problem_responses
from service.broker import dead_letters
from service.broker.dead_letters import DeadLetter, DeadLetterQueue
from service.broker.topology import QUEUES, QueueNames
from service.observability.metrics import Metrics
from service.quota.store import QuotaState, QuotaStore, Unlimited
from service.secrets import Secret
from service.store.ledger import DesignRow, Ledger, Step

log = structlog.get_logger("merch_pipeline.admin")


class DesignPage(msgspec.Struct, frozen=True):
    items: list[DesignRow]
    next_cursor: str | None


class DesignDetail(msgspec.Struct, frozen=True):
    design: DesignRow
    steps: list[Step]


class PublishedEvent(msgspec.Struct, frozen=True):
    id: str
    routing_key: str


class RetryResult(msgspec.Struct, frozen=True):
    action: Literal["requeued", "republished"]
    design: DesignRow


class ReconcileRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The product Fourthwall holds for the design, as the operator found it there."""

    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Replayed(msgspec.Struct, frozen=True):
    queue: str
    to: str
    replayed: list[str]


class Discarded(msgspec.Struct, frozen=True):
    queue: str
    discarded: int


def _operator(request: Request[Any, Any, Any]) -> str:
    """Who did it, for the audit line: X-Operator if the caller names themselves."""
    return request.headers.get("x-operator", "admin-token")[:80]


DesignRef = Annotated[
    str,
    PathParameter(
        pattern=r"^[^:/]+:[^:/]+(:[0-9]+)?$",
        description="shop_id:design_id[:revision] (revision 1 when left out)",
    ),
]


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


class Operated(Protocol):
    """What the admin API drives in the running service."""

    def readiness(self) -> Any: ...
    async def pause(self, name: str) -> bool: ...
    async def resume(self, name: str) -> bool: ...
    async def publish_design_event(self, event: CloudEvent) -> None: ...
    async def send_design_to_queue(self, event: CloudEvent, operator: str) -> None: ...
    async def publish_event(self, event: CloudEvent, routing_key: str) -> None: ...
    def broker_channel(self) -> AbstractAsyncContextManager[AbstractChannel]: ...


def _dead_letter_queue(name: str) -> QueueNames:
    names = QUEUES.get(name)
    if names is None:
        raise HTTPException(
            status_code=404, detail=f"no dead-letter queue for {name!r}; one of {sorted(QUEUES)}"
        )
    return names


def _refused(exc: recovery.Refused) -> HTTPException:
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return HTTPException(status_code=exc.status, detail=exc.detail, headers=headers)


def admin_router(
    token: Secret,
    ledger: Ledger,
    quota: QuotaStore | Unlimited,
    service: Operated,
    timeout_s: float = 10.0,
    metrics: Metrics | None = None,
) -> Router:
    expected = token.reveal().encode()

    def audit(action: str, operator: str, **details: Any) -> None:
        """Who did what: one log line per operator action, and a count of them."""
        log.warning("admin.action", action=action, operator=operator, **details)
        if metrics is not None:
            metrics.admin_actions.labels(action).inc()

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

    @get(
        "/designs",
        summary="Designs, filtered by state and shop, oldest first",
        responses=problem_responses(400, 401, 403),
    )
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

    @get(
        "/designs/{design_ref:str}",
        summary="One design with every step it went through",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def get_design(design_ref: DesignRef) -> DesignDetail:
        key = design_key(design_ref)
        row = await ledger.design(key)
        if row is None:
            raise HTTPException(status_code=404, detail=f"no design {design_ref!r}")
        return DesignDetail(design=row, steps=await ledger.steps(key))

    @post(
        "/designs/{design_ref:str}/retry",
        status_code=202,
        summary="Run a failed design again from its last good step",
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def retry_design(design_ref: DesignRef, request: Request[Any, Any, Any]) -> RetryResult:
        key = design_key(design_ref)
        try:
            action = await recovery.retry_design(
                ledger, key, operator=_operator(request), send=service.send_design_to_queue
            )
        except recovery.Refused as exc:
            raise _refused(exc) from None
        audit("retry", _operator(request), design=design_ref, outcome=action)
        row = await ledger.design(key)
        assert row is not None
        return RetryResult(action=action, design=row)

    @post(
        "/designs/{design_ref:str}/reconcile",
        status_code=200,
        summary="Record the product Fourthwall made for a design that needs reconciliation",
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def reconcile_design(
        design_ref: DesignRef, data: JSONBody[ReconcileRequest], request: Request[Any, Any, Any]
    ) -> DesignDetail:
        key = design_key(design_ref)
        try:
            await recovery.reconcile_design(
                ledger,
                key,
                data.product_id,
                operator=_operator(request),
                publish=service.publish_event,
            )
        except recovery.Refused as exc:
            raise _refused(exc) from None
        audit("reconcile", _operator(request), design=design_ref, product_id=data.product_id)
        row = await ledger.design(key)
        assert row is not None
        return DesignDetail(design=row, steps=await ledger.steps(key))

    @contextlib.asynccontextmanager
    async def broker() -> AsyncIterator[AbstractChannel]:
        try:
            async with service.broker_channel() as channel:
                yield channel
        except HTTPException:
            raise
        except Exception as exc:
            log.warning("admin.broker_error", error=type(exc).__name__)
            raise HTTPException(
                status_code=503,
                detail=f"the broker did not answer ({type(exc).__name__})",
                headers={"Retry-After": "5"},
            ) from None

    @get(
        "/dead-letters",
        summary="Each dead-letter queue and how many messages it holds",
        responses=problem_responses(401, 403, 503),
    )
    async def dead_letter_queues() -> list[DeadLetterQueue]:
        async with broker() as channel:
            return [await dead_letters.depth(channel, names) for names in QUEUES.values()]

    @get(
        "/dead-letters/{name:str}/messages",
        summary="Look at the oldest dead letters (they stay where they are)",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def peek_dead_letters(
        name: FromPath[str], limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20
    ) -> list[DeadLetter]:
        names = _dead_letter_queue(name)
        async with broker() as channel:
            return await dead_letters.peek(channel, names, limit)

    async def _replay(
        name: str, ids: frozenset[str] | None, limit: int, request: Request[Any, Any, Any]
    ) -> Replayed:
        names = _dead_letter_queue(name)
        operator = _operator(request)
        async with broker() as channel:
            replayed = await dead_letters.replay(
                channel, names, operator=operator, ids=ids, limit=limit, timeout_s=timeout_s
            )
        if ids is not None and not replayed:
            raise HTTPException(status_code=404, detail=f"no dead letter {min(ids)!r} in {name}")
        audit(
            "dead_letters.replay",
            operator,
            queue=names.dead_letter,
            count=len(replayed),
            ids=replayed[:20],
        )
        return Replayed(queue=names.dead_letter, to=names.queue, replayed=replayed)

    @post(
        "/dead-letters/{name:str}/replay",
        status_code=200,
        summary="Put every dead letter (at most `limit`) back on its source queue",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def replay_all(
        name: FromPath[str],
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=dead_letters.MAX_SWEEP)] = 1000,
    ) -> Replayed:
        return await _replay(name, None, limit, request)

    @post(
        "/dead-letters/{name:str}/messages/{message_id:str}/replay",
        status_code=200,
        summary="Put one dead letter back on its source queue",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def replay_one(
        name: FromPath[str], message_id: FromPath[str], request: Request[Any, Any, Any]
    ) -> Replayed:
        return await _replay(name, frozenset({message_id}), dead_letters.MAX_SWEEP, request)

    @delete(
        "/dead-letters/{name:str}/messages/{message_id:str}",
        status_code=200,
        summary="Drop one dead letter",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def discard_one(
        name: FromPath[str], message_id: FromPath[str], request: Request[Any, Any, Any]
    ) -> Discarded:
        names = _dead_letter_queue(name)
        async with broker() as channel:
            dropped = await dead_letters.discard(
                channel, names, frozenset({message_id}), dead_letters.MAX_SWEEP
            )
        if not dropped:
            raise HTTPException(status_code=404, detail=f"no dead letter {message_id!r} in {name}")
        audit("dead_letters.discard", _operator(request), queue=names.dead_letter, ids=dropped)
        return Discarded(queue=names.dead_letter, discarded=len(dropped))

    @delete(
        "/dead-letters/{name:str}/messages",
        status_code=200,
        summary="Purge the dead-letter queue",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def purge(name: FromPath[str], request: Request[Any, Any, Any]) -> Discarded:
        names = _dead_letter_queue(name)
        async with broker() as channel:
            count = await dead_letters.purge(channel, names)
        audit("dead_letters.purge", _operator(request), queue=names.dead_letter, count=count)
        return Discarded(queue=names.dead_letter, discarded=count)

    @get(
        "/shops/{shop_id:str}/quota",
        summary="The shop's Fourthwall quota right now",
        responses=problem_responses(401, 403, 409),
    )
    async def shop_quota(shop_id: FromPath[str]) -> QuotaState:
        if isinstance(quota, Unlimited):
            raise HTTPException(status_code=409, detail="the quota limiter is switched off")
        return await quota.state(shop_id)

    def statuses() -> list[ConsumerHealth]:
        return list(service.readiness().consumers)

    @get(
        "/consumers", summary="Each consumer of this process", responses=problem_responses(401, 403)
    )
    async def consumers() -> list[ConsumerHealth]:
        return statuses()

    async def _switch(name: str, on: bool, request: Request[Any, Any, Any]) -> ConsumerHealth:
        done = await (service.resume(name) if on else service.pause(name))
        if not done:
            raise HTTPException(status_code=404, detail=f"this process runs no consumer {name!r}")
        audit("resume" if on else "pause", _operator(request), consumer=name)
        return next(s for s in statuses() if s.name == name)

    @post(
        "/consumers/{name:str}/pause",
        status_code=200,
        summary="Stop taking messages (in-flight ones finish)",
        responses=problem_responses(401, 403, 404),
    )
    async def pause(name: FromPath[str], request: Request[Any, Any, Any]) -> ConsumerHealth:
        return await _switch(name, False, request)

    @post(
        "/consumers/{name:str}/resume",
        status_code=200,
        summary="Take messages again",
        responses=problem_responses(401, 403, 404),
    )
    async def resume(name: FromPath[str], request: Request[Any, Any, Any]) -> ConsumerHealth:
        return await _switch(name, True, request)

    @post(
        "/events/design-approved",
        status_code=202,
        summary="Validate a design.approved CloudEvent and publish it to merch.events",
        responses=problem_responses(400, 401, 403, 503),
    )
    async def publish_design(request: Request[Any, Any, Any]) -> PublishedEvent:
        try:
            event = decode_structured(await request.body())
            decode_data(event, DESIGN_APPROVED)
        except ContractError as exc:
            raise HTTPException(status_code=400, detail=f"{exc.reason}: {exc.detail}") from None
        unknown = unknown_fields(event.data, DESIGN_APPROVED)
        if unknown:
            raise HTTPException(
                status_code=400,
                detail=f"unknown_field: {', '.join(unknown)} (not in {DESIGN_APPROVED.name}; "
                "a consumer would ignore it)",
            )
        try:
            await service.publish_design_event(event)
        except Exception as exc:
            raise HTTPException(
                status_code=503,
                detail="the broker did not confirm the event",
                headers={"Retry-After": "5"},
            ) from exc
        audit("publish", _operator(request), event_id=event.id)
        return PublishedEvent(id=event.id, routing_key=DESIGN_APPROVED.routing_key)

    return Router(
        path="/admin",
        route_handlers=[
            list_designs,
            get_design,
            retry_design,
            reconcile_design,
            dead_letter_queues,
            peek_dead_letters,
            replay_all,
            replay_one,
            discard_one,
            purge,
            shop_quota,
            consumers,
            pause,
            resume,
            publish_design,
        ],
        guards=[require_token],
        tags=["admin"],
        exception_handlers={HTTPException: problem_response},
        security=[{"AdminToken": []}],
    )
