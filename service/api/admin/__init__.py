"""``/admin``: what operators read and fix without touching the database or the broker.

Controllers by resource (designs, dead letters, consumers, shops, events) behind one bearer-token
guard, their dependencies provided by Litestar's DI from what the composition root built. With
no ADMIN_TOKEN configured the router is not mounted at all (404): off, not open. Errors are
RFC 9457 problems (``service/api/problems.py``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.di import NamedDependency, Provide

from service.api.admin.audit import Acting, Audit
from service.api.admin.consumers import ConsumersController
from service.api.admin.dead_letters import DeadLettersController
from service.api.admin.designs import DesignsController
from service.api.admin.events import EventsController
from service.api.admin.failures import FailuresController
from service.api.admin.guard import bearer_guard
from service.api.admin.shops import ShopsController
from service.errors import Unavailable
from service.ledger_watch import LedgerWatch
from service.observability.metrics import Metrics
from service.operations import Operations
from service.quota.store import QuotaStore, Unlimited
from service.secrets import Secret
from service.store.app_tokens import AppTokenStore
from service.store.ledger import Ledger
from service.store.parking import ParkingLot


def _value(value: object) -> Provide:
    def provide() -> Any:
        return value

    return Provide(provide, sync_to_thread=False, use_cache=True)


def _needs_ledger(value: object, watch: LedgerWatch | None) -> Provide:
    """A dependency on the ledger: while it is away, 503 at once (no statement waits for a
    database known to be down)."""

    def provide() -> Any:
        if watch is not None and not watch.available:
            raise Unavailable(
                f"the service's database is not answering ({watch.error}); try again shortly",
                slug="ledger-unavailable",
            )
        return value

    return Provide(provide, sync_to_thread=False)


def acting_of(
    request: Request[Any, Any, Any],
    operations: NamedDependency[Operations],
    audit: NamedDependency[Audit],
) -> Acting:
    """Who acts (X-Operator if the caller names themselves), on what, with which audit line."""
    return Acting(request.headers.get("x-operator", "admin-token")[:80], operations, audit)


def admin_router(
    token: Secret,
    ledger: Ledger,
    quota: QuotaStore | Unlimited,
    operations: Operations,
    parking: ParkingLot,
    metrics: Metrics | None = None,
    ledger_watch: LedgerWatch | None = None,
    app_grants: AppTokenStore | None = None,
) -> Router:
    return Router(
        path="/admin",
        route_handlers=[
            DesignsController,
            DeadLettersController,
            ConsumersController,
            ShopsController,
            EventsController,
            FailuresController,
        ],
        dependencies={
            "ledger": _needs_ledger(ledger, ledger_watch),
            "parking": _needs_ledger(parking, ledger_watch),
            "quota": _needs_ledger(quota if isinstance(quota, QuotaStore) else None, ledger_watch),
            "app_grants": _needs_ledger(app_grants, ledger_watch),
            "operations": _value(operations),
            "audit": _value(Audit(metrics)),
            "acting": Provide(acting_of, sync_to_thread=False),
        },
        guards=[bearer_guard(token)],
        tags=["admin"],
        security=[{"AdminToken": []}],
    )
