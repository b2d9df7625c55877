"""structlog set-up: every line of the process (ours and the libraries', which log through the
standard library) goes through one ``structlog.stdlib.ProcessorFormatter``: JSON lines in
production, console rendering on a TTY, each with ``logger``, ``level``, ``timestamp`` and the
active span's ``trace_id``/``span_id``."""

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
# Libraries that say a line per request or per frame at INFO: warnings and errors only.
QUIET = ("httpx", "httpcore", "aio_pika", "aiormq", "asyncpg", "uvicorn.access")


def _trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``trace_id`` and ``span_id`` of the active span, when tracing is on."""
    event.update(current_ids())
    return event


def _shared() -> list[Any]:
    """What every line gets, ours and a library's alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _trace_ids,
    ]


def _formatter(json_output: bool, colors: bool) -> structlog.stdlib.ProcessorFormatter:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure_logging(log_format: str = "auto", level: str = "info", stream: Any = None) -> None:
    stream = stream or sys.stderr
    json_output = log_format == "json" or (log_format == "auto" and not stream.isatty())
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_formatter(json_output, colors=stream.isatty()))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, _LEVELS[level]))
