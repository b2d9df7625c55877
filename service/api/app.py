"""``create_app()``: health probes, the producers' webhook, and OpenAPI at ``/schema``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.openapi import OpenAPIConfig

from service.webhooks.ingress import Ingress


class ConsumerHealth(msgspec.Struct, frozen=True):
    name: str
    attached: bool
    in_flight: int


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    broker_connected: bool
    consumers: list[ConsumerHealth]


class Liveness(msgspec.Struct, frozen=True):
    status: str


def create_app(readiness: Callable[[], Readiness], ingress: Ingress | None = None) -> Litestar:
    @get("/health/live", tags=["health"], summary="The process is up and serving HTTP")
    async def live() -> Liveness:
        return Liveness(status="ok")

    @get(
        "/health/ready",
        tags=["health"],
        summary="Broker connected and every configured consumer attached",
        responses=None,
    )
    async def ready() -> Response[Readiness]:
        state = readiness()
        return Response(state, status_code=200 if state.ready else 503)

    return Litestar(
        route_handlers=[live, ready, *([_webhook_route(ingress)] if ingress else [])],
        openapi_config=OpenAPIConfig(title="merch-pipeline", version="0.1.0", path="/schema"),
        logging_config=None,
    )


def _webhook_route(ingress: Ingress) -> Any:
    """Registered only when a webhook secret is configured: otherwise the path is a 404."""

    @post(
        "/webhooks/design-approved",
        tags=["webhooks"],
        summary="Accept design-approved CloudEvents from a signed webhook (Standard Webhooks)",
        description=(
            "CloudEvents HTTP binding: structured (application/cloudevents+json), binary "
            "(ce-* headers, application/json body) or batch (application/cloudevents-batch+json). "
            "Signed with webhook-id, webhook-timestamp and webhook-signature. 202 once the broker "
            "confirmed every event; a replayed webhook-id answers 202 again and publishes nothing."
        ),
        status_code=202,
    )
    async def design_approved_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
        answer = await ingress.receive(dict(request.headers), await request.body())
        media = "application/problem+json" if answer.status >= 400 else "application/json"
        return Response(
            msgspec.json.encode(answer.body),
            status_code=answer.status,
            headers=answer.headers,
            media_type=media,
        )

    return design_approved_webhook
