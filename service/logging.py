"""structlog set-up: JSON lines in production, console rendering on a TTY."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from service.observability.tracing import current_ids

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``trace_id`` and ``span_id`` of the active span, when tracing is on."""
    event.update(current_ids())
    return event


def configure_logging(log_format: str = "auto", level: str = "info", stream: Any = None) -> None:
    stream = stream or sys.stderr
    json_output = log_format == "json" or (log_format == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; keep them quiet unless they warn.
    logging.basicConfig(
        level=logging.WARNING, stream=stream, format="%(name)s %(message)s", force=True
    )
    for noisy in ("httpx", "httpcore", "aio_pika", "aiormq", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
