"""``create_app()``: health probes and OpenAPI at ``/schema``."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar import Litestar, Response, get
from litestar.openapi import OpenAPIConfig


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


def create_app(readiness: Callable[[], Readiness]) -> Litestar:
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
        route_handlers=[live, ready],
        openapi_config=OpenAPIConfig(title="merch-pipeline", version="0.1.0", path="/schema"),
        logging_config=None,
    )
