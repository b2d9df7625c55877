"""Who did what: one log line per operator action, and a count of them."""

from __future__ import annotations

from typing import Any

import structlog

from service.observability.metrics import Metrics

log = structlog.get_logger("merch_pipeline.admin")


class Audit:
    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    def __call__(self, action: str, operator: str, **details: Any) -> None:
        log.warning("admin.action", action=action, operator=operator, **details)
        if self._metrics is not None:
            self._metrics.admin_actions.labels(action).inc()
