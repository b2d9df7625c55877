"""The composition root: the one place that builds adapters and binds them to the handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from consumers import design_approved, product_created
from consumers.outcomes import Outcome
from consumers.ports import Delivery
from service.broker.consumer import AfterPublish, Exhausted
from service.broker.topology import DESIGN_APPROVED_QUEUE, PRODUCT_CREATED_QUEUE, QueueNames
from service.failpoints import Failpoints, wrap
from service.observability.metrics import Metrics
from service.quota.limits import limits_for
from service.quota.store import QuotaStore, Unlimited
from service.settings import Settings
from service.store.database import Database, open_database
from service.store.ledger import Ledger
from service.store.migrations import migrate
from service.upstreams.credentials import fourthwall_auth, identity_templates, luigisbox_account
from service.upstreams.fourthwall import FourthwallClient
from service.upstreams.http import new_http_client
from service.upstreams.luigisbox import LuigisBoxClient


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BoundConsumer:
    names: QueueNames
    handle: Callable[[Any, Delivery], Awaitable[Outcome]]
    exhausted: Exhausted
    after_publish: AfterPublish | None = None


@dataclass(frozen=True)
class Resources:
    """What the process opens once and closes on the way out."""

    fourthwall_http: httpx.AsyncClient
    luigisbox_http: httpx.AsyncClient
    db: Database
    ledger: Ledger
    quota: QuotaStore | Unlimited
    metrics: Metrics

    async def aclose(self) -> None:
        await self.fourthwall_http.aclose()
        await self.luigisbox_http.aclose()
        await self.db.close()


async def open_ledger(settings: Settings) -> tuple[Database, Ledger]:
    db = await open_database(settings.database_url)
    if settings.migrate_on_start:
        await migrate(db)
    return db, Ledger(db, lease_s=settings.lease_s)


async def open_resources(settings: Settings) -> Resources:
    db, ledger = await open_ledger(settings)
    quota: QuotaStore | Unlimited = (
        QuotaStore(db, partial(limits_for, settings), max_hold_s=settings.quota_max_hold_s)
        if settings.quota_enabled
        else Unlimited()
    )
    return Resources(
        fourthwall_http=new_http_client(settings.fourthwall_api_url, settings.http_timeout_s),
        luigisbox_http=new_http_client(settings.luigisbox_api_url, settings.http_timeout_s),
        db=db,
        ledger=ledger,
        quota=quota,
        metrics=Metrics(),
    )


def build_consumers(
    settings: Settings,
    resources: Resources,
    names: tuple[str, ...],
    failpoints: Failpoints | None = None,
) -> list[BoundConsumer]:
    ledger = wrap(resources.ledger, failpoints)
    fourthwall = wrap(
        FourthwallClient(
            resources.fourthwall_http,
            partial(fourthwall_auth, settings),
            observe=resources.metrics.observe_call,
        ),
        failpoints,
    )
    luigisbox = LuigisBoxClient(
        resources.luigisbox_http,
        partial(luigisbox_account, settings),
        observe=resources.metrics.observe_call,
    )
    busy = min(settings.retry_delays_s)

    async def mark_published(created: Any) -> None:
        await ledger.mark_published(design_approved.key_of_created(created))

    available = {
        DESIGN_APPROVED_QUEUE.consumer: BoundConsumer(
            DESIGN_APPROVED_QUEUE,
            partial(
                design_approved.handle,
                ports=design_approved.Ports(
                    fourthwall=fourthwall,
                    ledger=ledger,
                    quota=resources.quota,
                    clock=utc_now,
                    busy_delay_s=busy,
                ),
            ),
            design_approved.exhausted,
            mark_published,
        ),
        PRODUCT_CREATED_QUEUE.consumer: BoundConsumer(
            PRODUCT_CREATED_QUEUE,
            partial(
                product_created.handle,
                ports=product_created.Ports(
                    luigisbox=luigisbox,
                    ledger=ledger,
                    clock=utc_now,
                    rules=settings.pins,
                    identity_template_for=identity_templates(settings),
                    busy_delay_s=busy,
                ),
            ),
            product_created.exhausted,
        ),
    }
    return [available[name] for name in names]
