"""``create_app()``: health probes, the producers' webhook, and OpenAPI at ``/schema``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router, get, post
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from service import __version__
from service.api.asyncapi import asyncapi_document
from service.api.problems import EXCEPTION_HANDLERS, problem_responses
from service.console import templates
from service.health import Readiness
from service.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from service.problems import PROBLEM_MEDIA_TYPE
from service.webhooks.fourthwall import FourthwallIngress
from service.webhooks.ingress import Ingress


class Liveness(msgspec.Struct, frozen=True):
    status: str


class Accepted(msgspec.Struct, frozen=True):
    """The webhook's answer once the broker confirmed every event."""

    accepted: int
    ids: list[str]
    duplicate: bool  # a webhook-id seen before: nothing was published again


def create_app(
    readiness: Callable[[], Readiness],
    ingresses: Sequence[Ingress] = (),
    fourthwall: FourthwallIngress | None = None,
    metrics: Callable[[], Awaitable[bytes]] | None = None,
    admin: Router | None = None,
    console: Router | None = None,
    middleware: Sequence[Any] = (),
) -> Litestar:
    asyncapi = asyncapi_document()

    @get(
        "/asyncapi.json",
        tags=["contract"],
        summary="The event contract (AsyncAPI 3.0)",
        media_type="application/json",
    )
    async def asyncapi_json() -> dict[str, Any]:
        return asyncapi

    @get("/metrics", tags=["observability"], summary="Prometheus metrics", media_type="text/plain")
    async def metrics_text() -> Response[bytes]:
        body = await metrics() if metrics else b""
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @get("/health/live", tags=["health"], summary="The process is up and serving HTTP")
    async def live() -> Liveness:
        return Liveness(status="ok")

    @get(
        "/health/ready",
        tags=["health"],
        summary="Broker connected and every configured consumer attached",
        responses={
            503: ResponseSpec(
                data_container=Readiness,
                description="Not ready: the broker is away or a consumer is not attached",
                generate_examples=False,
            )
        },
    )
    async def ready() -> Response[Readiness]:
        state = readiness()
        return Response(state, status_code=200 if state.ready else 503)

    return Litestar(
        route_handlers=[
            live,
            ready,
            asyncapi_json,
            metrics_text,
            *(_webhook_route(ingress) for ingress in ingresses),
            *([_fourthwall_route(fourthwall)] if fourthwall else []),
            *([admin] if admin else []),
            *([console] if console else []),
        ],
        template_config=templates() if console else None,
        openapi_config=OpenAPIConfig(
            title="merch-pipeline",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={
                    "AdminToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="ADMIN_TOKEN, for everything under /admin",
                    )
                }
            ),
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=list(middleware),
        logging_config=None,
    )


def _webhook_route(ingress: Ingress) -> Any:
    """Registered only when a webhook secret is configured: otherwise the path is a 404."""

    kind = ingress.event_type.routing_key.replace(".", "-")

    @post(
        ingress.path,
        tags=["webhooks"],
        name=f"{kind}-webhook",
        operation_id=f"webhook_{kind.replace('-', '_')}",
        summary=f"Accept {kind} CloudEvents from a signed webhook (Standard Webhooks)",
        description=(
            "CloudEvents HTTP binding: structured (application/cloudevents+json), binary "
            "(ce-* headers, application/json body) or batch (application/cloudevents-batch+json). "
            "Signed with webhook-id, webhook-timestamp and webhook-signature. 202 once the broker "
            "confirmed every event; a replayed webhook-id answers 202 again and publishes nothing."
        ),
        status_code=202,
        responses=problem_responses(400, 401, 413, 415, 429, 503),
    )
    async def webhook(request: Request[Any, Any, Any]) -> Response[Accepted]:
        answer = await ingress.receive(dict(request.headers), await request.body())
        media = PROBLEM_MEDIA_TYPE if answer.status >= 400 else "application/json"
        return Response(
            answer.body,  # type: ignore[arg-type]
            status_code=answer.status,
            headers=answer.headers,
            media_type=media,
        )

    return webhook


def _fourthwall_route(ingress: FourthwallIngress) -> Any:
    """Registered only when a shop has a Fourthwall webhook secret: otherwise a 404."""

    @post(
        "/webhooks/fourthwall",
        tags=["webhooks"],
        summary="Accept Fourthwall's product webhooks (X-Fourthwall-Hmac-SHA256)",
        description=(
            "Fourthwall's webhook envelope, signed with the shop's webhook secret. 200 once the "
            "change is on merch.events (or when the event is ignored, or seen before); 401 for "
            "an unknown shop or a signature that does not verify; 503 when the broker or the "
            "ledger is away (Fourthwall retries)."
        ),
        status_code=200,
        responses=problem_responses(400, 401, 413, 503),
    )
    async def fourthwall_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        answer = await ingress.receive(dict(request.headers), await request.body())
        media = PROBLEM_MEDIA_TYPE if answer.status >= 400 else "application/json"
        return Response(
            answer.body, status_code=answer.status, headers=answer.headers, media_type=media
        )

    return fourthwall_webhook
