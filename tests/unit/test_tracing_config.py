"""Tracing is configured by the standard OTEL_* variables only, and off unless asked for."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from service.observability.tracing import TracingConfigError, tracer_provider

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "x"},  # naming the service alone turns nothing on
        {**ENDPOINT, "OTEL_SDK_DISABLED": "true"},
        {**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "otlp,none"},
    ],
)
def test_off_unless_an_exporter_or_endpoint_is_set_and_nothing_turns_it_off(
    environ: dict[str, str],
) -> None:
    assert tracer_provider(environ) is None


@pytest.mark.parametrize(
    "environ",
    [
        ENDPOINT,
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
        {"OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    ],
)
def test_on_with_an_exporter_or_an_endpoint(environ: dict[str, str]) -> None:
    provider = tracer_provider(environ)
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "merch-pipeline"
    provider.shutdown()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin'"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'"),
    ],
)
def test_a_value_this_service_cannot_honour_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TracingConfigError, match=named):
        tracer_provider(environ)


def test_otel_propagators_chooses_the_propagators_and_refuses_an_unknown_one() -> None:
    from service.observability.tracing import propagator_of

    assert propagator_of({}).fields == {"traceparent", "tracestate", "baggage"}
    assert propagator_of({"OTEL_PROPAGATORS": "baggage"}).fields == {"baggage"}
    assert propagator_of({"OTEL_PROPAGATORS": "none"}).fields == set()
    with pytest.raises(TracingConfigError, match="'b3multi'"):
        propagator_of({"OTEL_PROPAGATORS": "tracecontext,b3multi"})


def test_a_bad_otel_propagators_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.bootstrap import propagation_from_environment
    from service.settings import SettingsError

    monkeypatch.setenv("OTEL_PROPAGATORS", "xray")
    with pytest.raises(SettingsError, match="OTEL_PROPAGATORS"):
        propagation_from_environment()
