"""OpenTelemetry traces, configured only by the standard ``OTEL_*`` environment variables.

Tracing is on when an exporter (``OTEL_TRACES_EXPORTER``: ``otlp`` or ``console``) or an OTLP
endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``) is set;
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turns it off whatever else is set.
With none of them, the tracer is OpenTelemetry's no-op one: nothing is recorded or exported and
nothing connects anywhere. The SDK reads the rest itself: ``OTEL_SERVICE_NAME`` (default here
``merch-pipeline``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``(``_ARG``), the
``OTEL_BSP_*`` batch settings and the exporter's endpoint, headers and timeout. OTLP goes over
HTTP (``http/protobuf``, port 4318).

The W3C ``traceparent`` travels in each CloudEvent and in the AMQP headers (the CloudEvents
distributed-tracing extension is W3C trace context whatever else is configured); ``context_of``
and ``traceparent_of`` turn one into a span's parent and a span into one. An HTTP request's
headers are read by OpenTelemetry's global propagator, which ``install_propagator`` sets from
``OTEL_PROPAGATORS`` (default ``tracecontext,baggage``; any propagator installed as an
``opentelemetry_propagator`` entry point, ``none`` for none).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SERVICE_NAME = "merch-pipeline"
INSTRUMENTATION = "merch_pipeline"
_propagator = TraceContextTextMapPropagator()


class TracingConfigError(ValueError):
    """An ``OTEL_*`` value this service cannot honour (named in the message)."""


def tracer_provider(environ: Mapping[str, str]) -> TracerProvider | None:
    """The provider the ``OTEL_*`` variables ask for, or None when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [n for n in named if n]
    if "none" in named:
        return None
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not named and not endpoint:
        return None
    exporters = [_exporter(name, environ) for name in named or ["otlp"]]
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp, console or none"
        )
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: this service sends "
            "OTLP over HTTP (http/protobuf, port 4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_* variables


def propagator_of(environ: Mapping[str, str]) -> TextMapPropagator:
    """The propagators ``OTEL_PROPAGATORS`` names, composed (TracingConfigError for a name
    that is not installed)."""
    names = [n.strip() for n in environ.get("OTEL_PROPAGATORS", "tracecontext,baggage").split(",")]
    names = [n for n in names if n]
    if "none" in names:
        return CompositePropagator([])
    found: list[TextMapPropagator] = []
    for name in dict.fromkeys(names):
        points = list(entry_points(group="opentelemetry_propagator", name=name))
        if not points:
            raise TracingConfigError(
                f"OTEL_PROPAGATORS names {name!r}, which is not installed "
                "(this build has tracecontext and baggage)"
            )
        found.append(points[0].load()())
    return CompositePropagator(found)


def install_propagator(environ: Mapping[str, str]) -> None:
    """Make ``OTEL_PROPAGATORS``'s propagators the global one. Checked before
    ``opentelemetry.propagate`` is imported: that import fails on a name it cannot load."""
    chosen = propagator_of(environ)
    from opentelemetry import propagate

    propagate.set_global_textmap(chosen)


def extract_context(headers: Mapping[str, str]) -> Context:
    """The caller's context from request headers, through the global propagator."""
    from opentelemetry import propagate

    return propagate.extract(headers)


def tracer_of(provider: TracerProvider | None) -> Tracer:
    return provider.get_tracer(INSTRUMENTATION) if provider else trace.NoOpTracer()


def context_of(traceparent: str | None) -> Context | None:
    """The remote parent a ``traceparent`` names (None when there is none or it is invalid)."""
    if not traceparent:
        return None
    context = _propagator.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def traceparent_of(span: Span) -> str | None:
    """``span`` as a W3C ``traceparent`` (None for a span that records nothing)."""
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def current_ids() -> dict[str, Any]:
    """``trace_id`` and ``span_id`` of the active span, for log lines (empty when none)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def send_attributes(
    destination: str, message_id: str, routing_key: str | None = None
) -> dict[str, str]:
    """A PRODUCER span's messaging attributes (OpenTelemetry's semantic conventions)."""
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": destination,
        "messaging.message.id": message_id,
    }
    if routing_key is not None:
        attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
    return attributes
