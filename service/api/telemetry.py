"""Each HTTP request: counted and timed per route template (never the raw path, which holds
ids), and a SERVER span that continues the caller's trace context (read by the global
propagator, ``OTEL_PROPAGATORS``) and is current while the handler runs, so the work it starts
(a publish, an operator's retry) hangs under it or links to it.

A plain ASGI middleware rather than Litestar's Prometheus and OpenTelemetry plugins: the former
keeps its metrics on the process-wide default registry (this service keeps one registry per
app), the latter needs the ASGI instrumentation package for what is one span here."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from service.observability.metrics import Metrics
from service.observability.tracing import extract_context

# Probes and scrapes are counted but not traced: a span every few seconds per pod says nothing.
UNTRACED = ("/health/", "/metrics")


class HttpTelemetry(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: Metrics, tracer: Tracer) -> None:
        self.metrics = metrics
        self.tracer = tracer

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = str(scope.get("method", "GET"))
        route = str(scope.get("path_template") or scope.get("path", ""))
        answered = {"status": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = int(message["status"])
            await send(message)

        started = time.perf_counter()
        with self._span(scope, method, route) as span:
            try:
                await next_app(scope, receive, sending)
            finally:
                status = answered["status"]
                self.metrics.observe_request(method, route, status, time.perf_counter() - started)
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                        span.set_attribute("error.type", str(status))

    @contextlib.contextmanager
    def _span(self, scope: Scope, method: str, route: str) -> Iterator[Span | None]:
        if route.startswith(UNTRACED):
            yield None
            return
        headers = _headers(scope)
        with self.tracer.start_as_current_span(
            f"{method} {route}",
            context=extract_context(headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.scheme": str(scope.get("scheme", "http")),
                "network.protocol.version": str(scope.get("http_version", "1.1")),
            },
        ) as span:
            yield span


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers as the propagator reads them (lower-case names; the first of a
    repeated header)."""
    found: dict[str, str] = {}
    raw: Any = scope.get("headers", ())
    for name, value in raw:
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found
