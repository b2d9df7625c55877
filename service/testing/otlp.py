"""A small OTLP/HTTP trace receiver for tests: it takes ``POST /v1/traces`` (protobuf, as the
SDK's exporter sends it), decodes each request with ``opentelemetry-proto`` and keeps the spans."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int  # the protobuf's SpanKind (1 internal, 2 server, 3 client, 4 producer, 5 consumer)
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]
    events: tuple[str, ...]
    status_code: int  # 0 unset, 1 ok, 2 error
    service_name: str


@dataclass
class Receiver:
    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    content_types: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope in resource_spans.scope_spans:
                    self.spans += [_span(s, str(resource.get("service.name"))) for s in scope.spans]


def _attributes(pairs: object) -> dict[str, object]:
    found: dict[str, object] = {}
    for pair in pairs:  # type: ignore[attr-defined]
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind) if kind else None
    return found


def _span(span: object, service_name: str) -> ReceivedSpan:
    s = span  # an opentelemetry.proto.trace.v1 Span
    return ReceivedSpan(
        name=s.name,  # type: ignore[attr-defined]
        kind=s.kind,  # type: ignore[attr-defined]
        trace_id=s.trace_id.hex(),  # type: ignore[attr-defined]
        span_id=s.span_id.hex(),  # type: ignore[attr-defined]
        parent_span_id=s.parent_span_id.hex(),  # type: ignore[attr-defined]
        attributes=_attributes(s.attributes),  # type: ignore[attr-defined]
        events=tuple(e.name for e in s.events),  # type: ignore[attr-defined]
        status_code=s.status.code,  # type: ignore[attr-defined]
        service_name=service_name,
    )


@contextlib.contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port (``Receiver.url`` is the OTLP endpoint to set)."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            receiver.content_types.add(self.headers.get("content-type", ""))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            receiver.add(request)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
