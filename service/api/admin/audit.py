"""Who did what: one log line per operator action, and a count of them; and ``Acting``, what a
handler of an action gets: the operator, the process's operations, and the audit line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from service.observability.metrics import Metrics
from service.operations import Operations

log = structlog.get_logger("merch_pipeline.admin")


class Audit:
    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    def __call__(self, action: str, operator: str, **details: Any) -> None:
        log.warning("admin.action", action=action, operator=operator, **details)
        if self._metrics is not None:
            self._metrics.admin_actions.labels(action).inc()


@dataclass(frozen=True)
class Acting:
    operator: str  # X-Operator, or "admin-token" when the caller does not say
    operations: Operations
    audit: Audit
    via: str | None = None  # "console" for the browser console; the API's lines have none

    def done(self, action: str, **details: Any) -> None:
        """The action was carried out: its audit line."""
        if self.via is not None:
            details = {**details, "via": self.via}
        self.audit(action, self.operator, **details)
