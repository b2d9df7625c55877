"""Every line the process writes is one JSON object naming its logger: the service's own
lines and those the libraries send through the standard library alike."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from service.logging import configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_library_lines_and_our_lines_are_json_with_a_logger_name(stream: io.StringIO) -> None:
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("merch_pipeline.runtime").info("service.started", http_port=8080)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("aio_pika.robust_connection").warning("Connection attempt failed")
    logging.getLogger("asyncpg.pool").info("said at info: left out")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    lines = _lines(stream)
    assert [line["logger"] for line in lines] == [
        "merch_pipeline.runtime",
        "uvicorn.error",
        "aio_pika.robust_connection",
        "asyncio",
    ]
    for line in lines:
        assert line["level"] in {"info", "warning", "error"}
        assert str(line["timestamp"]).endswith("Z")
    assert lines[0]["event"] == "service.started" and lines[0]["http_port"] == 8080
    assert lines[1]["event"] == "Started server process [42]"
    assert "RuntimeError: boom" in str(lines[3]["exception"])


def test_a_library_line_inside_a_span_carries_the_trace_ids(stream: io.StringIO) -> None:
    configure_logging("json", "info", stream=stream)
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("work") as span:
        logging.getLogger("uvicorn.error").warning("inside")
        structlog.get_logger("merch_pipeline").info("ours")
    context = span.get_span_context()
    for line in _lines(stream):
        assert line["trace_id"] == f"{context.trace_id:032x}"
        assert line["span_id"] == f"{context.span_id:016x}"


def test_the_level_filters_our_lines_and_the_libraries(stream: io.StringIO) -> None:
    configure_logging("json", "warning", stream=stream)
    structlog.get_logger("merch_pipeline").info("hidden")
    logging.getLogger("uvicorn.error").info("hidden too")
    structlog.get_logger("merch_pipeline").warning("shown")
    assert [line["event"] for line in _lines(stream)] == ["shown"]
