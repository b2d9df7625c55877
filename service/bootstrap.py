"""The composition root: the one place that builds the process's parts and binds them.

``wire`` opens the ledger and the HTTP clients, builds the upstream clients, the handlers with
their ports, the consume loops and their switches, the broker link, the operator's actions, the
webhook ingress, the admin router and the Litestar app, and hands them to ``Service`` (the
lifecycle) as one ``Wiring``. Nothing else constructs an adapter.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from consumers import design_approved, design_withdrawn, fourthwall_changes, product_created
from consumers.outcomes import Outcome
from consumers.ports import Delivery
from service.api.admin import admin_router
from service.api.admin.audit import Audit
from service.api.app import create_app
from service.api.telemetry import HttpTelemetry
from service.broker.consumer import AfterPublish, Consumer, Exhausted, RetryPolicy
from service.broker.link import BrokerLink
from service.broker.parking import Releaser, parker
from service.broker.publisher import Publishes
from service.broker.switch import ConsumerSwitch
from service.broker.topology import (
    DESIGN_APPROVED_QUEUE,
    DESIGN_WITHDRAWN_QUEUE,
    FOURTHWALL_CHANGES_QUEUE,
    PRODUCT_CREATED_QUEUE,
    QueueNames,
)
from service.console import console_router
from service.console.parts import ConsoleParts
from service.console.security import LoginAttempts
from service.console.sessions import ConsoleSessions
from service.health import Readiness, readiness
from service.ledger_watch import LedgerWatch
from service.observability.metrics import Metrics
from service.observability.scrape import render_metrics
from service.observability.tracing import (
    TracingConfigError,
    install_propagator,
    tracer_of,
    tracer_provider,
)
from service.operations import Operations
from service.publish import PRODUCER_EVENTS
from service.quota.limits import limits_for
from service.quota.store import QuotaStore, Unlimited
from service.settings import Settings, SettingsError
from service.store.app_tokens import AppTokenStore
from service.store.database import Database, open_database
from service.store.ledger import Ledger
from service.store.migrations import check_schema, migrate
from service.store.parking import ParkingLot
from service.upstreams.app_tokens import AppTokens
from service.upstreams.artwork import ArtworkFetcher
from service.upstreams.credentials import (
    fourthwall_auth,
    identity_templates,
    luigisbox_account,
    product_url_templates,
)
from service.upstreams.fourthwall import FourthwallClient
from service.upstreams.http import new_http_client
from service.upstreams.luigisbox import LuigisBoxClient
from service.webhooks.deliveries import Deliveries
from service.webhooks.fourthwall import FourthwallIngress, FourthwallShop
from service.webhooks.ingress import Ingress
from service.webhooks.ratelimit import RateLimit
from service.webhooks.signatures import producers as webhook_producers

if TYPE_CHECKING:
    from litestar import Litestar, Router

    from service.failpoints import Failpoints

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BoundConsumer:
    names: QueueNames
    handle: Callable[[Any, Delivery], Awaitable[Outcome]]
    exhausted: Exhausted
    after_publish: AfterPublish | None = None
    # Waits for a shop's quota go to the parking lot, keyed by (shop, design, revision). A
    # Fourthwall change names no design and a withdrawal may name no revision: their rare
    # waits (a Luigi's Box 429) take the broker's delay queue instead.
    parks: bool = True


@dataclass(frozen=True)
class Resources:
    """What the process opens once and closes on the way out."""

    fourthwall_http: httpx.AsyncClient
    luigisbox_http: httpx.AsyncClient
    db: Database
    ledger: Ledger
    quota: QuotaStore | Unlimited
    metrics: Metrics
    ledger_watch: LedgerWatch
    parking: ParkingLot
    tracing: TracerProvider | None = None  # None: tracing off (OpenTelemetry's no-op tracer)
    artwork_http: httpx.AsyncClient | None = None  # artwork named by URL (ARTWORK_HOSTS)

    @property
    def tracer(self) -> Tracer:
        return tracer_of(self.tracing)

    async def aclose(self) -> None:
        await self.ledger_watch.close()
        await self.fourthwall_http.aclose()
        await self.luigisbox_http.aclose()
        if self.artwork_http is not None:
            await self.artwork_http.aclose()
        await self.db.close()
        if self.tracing is not None:
            self.tracing.shutdown()  # exports what is still batched


async def open_ledger(settings: Settings) -> tuple[Database, Ledger]:
    """The ledger's database, migrated (MIGRATE_ON_START) or checked to be exactly the schema
    this release knows (else ``SchemaMismatch``, the database closed)."""
    db = await open_database(settings.database_url, settings.ledger_timeout_s)
    try:
        if settings.migrate_on_start:
            await migrate(db)
        else:
            await check_schema(db)
    except BaseException:
        await db.close()
        raise
    return db, Ledger(db, lease_s=settings.lease_s)


def tracing_from_environment() -> TracerProvider | None:
    """The ``OTEL_*`` variables' tracer provider (service/observability/tracing.py)."""
    try:
        return tracer_provider(os.environ)
    except TracingConfigError as exc:
        raise SettingsError("OTEL_TRACES_EXPORTER", str(exc)) from None


def propagation_from_environment() -> None:
    """``OTEL_PROPAGATORS`` made the global propagator (what an HTTP request's headers are
    read with)."""
    try:
        install_propagator(os.environ)
    except TracingConfigError as exc:
        raise SettingsError("OTEL_PROPAGATORS", str(exc)) from None


async def open_resources(settings: Settings, tracing: TracerProvider | None = None) -> Resources:
    propagation_from_environment()
    tracing = tracing if tracing is not None else tracing_from_environment()
    db, ledger = await open_ledger(settings)
    metrics = Metrics()
    watch = LedgerWatch(ledger, settings.ledger_probe_interval_s, metrics)
    ledger.on_unavailable = watch.down  # a write held for an answer pauses the consumers too
    quota: QuotaStore | Unlimited = (
        QuotaStore(
            db,
            partial(limits_for, settings),
            max_hold_s=settings.quota_max_hold_s,
            call_timeout_s=settings.http_timeout_s,
        )
        if settings.quota_enabled
        else Unlimited()
    )
    return Resources(
        fourthwall_http=new_http_client(settings.fourthwall_api_url, settings.http_timeout_s),
        luigisbox_http=new_http_client(settings.luigisbox_api_url, settings.http_timeout_s),
        db=db,
        ledger=ledger,
        quota=quota,
        metrics=metrics,
        ledger_watch=watch,
        parking=ParkingLot(db),
        tracing=tracing,
        artwork_http=(
            new_http_client("", settings.http_timeout_s) if settings.artwork_hosts else None
        ),
    )


def failpoints_of(settings: Settings) -> Failpoints | None:
    """The crash tests' failpoints, when asked for (settings refuse them outside test mode).
    Imported here only: the container image leaves the module out."""
    if not settings.failpoints:
        return None
    try:
        from service.failpoints import Failpoints
    except ImportError:
        raise SettingsError("FAILPOINTS", "this build has no failpoints (a test tool)") from None
    try:
        return Failpoints(settings.failpoints)
    except ValueError as exc:
        raise SettingsError("FAILPOINTS", str(exc)) from None


def tripwire(target: T, failpoints: Failpoints | None) -> T:
    return target if failpoints is None else failpoints.wrap(target)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(settings.max_attempts, settings.retry_delays_s, settings.retry_jitter)


def upstream_clients(
    settings: Settings, resources: Resources, failpoints: Failpoints | None
) -> tuple[FourthwallClient, LuigisBoxClient]:
    """Both upstreams' clients on the process's pooled HTTP clients, metered and traced."""
    fourthwall = FourthwallClient(
        resources.fourthwall_http,
        partial(fourthwall_auth, settings),
        observe=resources.metrics.observe_call,
        tracer=resources.tracer,
        app_tokens=app_tokens(settings, resources),
    )
    luigisbox = LuigisBoxClient(
        resources.luigisbox_http,
        partial(luigisbox_account, settings),
        observe=resources.metrics.observe_call,
        tracer=resources.tracer,
    )
    return tripwire(fourthwall, failpoints), tripwire(luigisbox, failpoints)


def app_tokens(settings: Settings, resources: Resources) -> AppTokens | None:
    """The Fourthwall app's token keeper, when an app is configured (its tokens in the
    ledger's database, refreshed on the Fourthwall HTTP client)."""
    if settings.fourthwall_app_client_id is None or settings.fourthwall_app_client_secret is None:
        return None
    return AppTokens(
        AppTokenStore(resources.db),
        resources.fourthwall_http,
        settings.fourthwall_app_client_id,
        settings.fourthwall_app_client_secret,
        margin_s=settings.fourthwall_app_refresh_margin_s,
        lease_s=settings.http_timeout_s + 5.0,
        observe=resources.metrics.observe_call,
        tracer=resources.tracer,
    )


def build_consumers(
    settings: Settings,
    resources: Resources,
    names: tuple[str, ...],
    failpoints: Failpoints | None = None,
) -> list[BoundConsumer]:
    """The handlers of ``names``, bound to their ports."""
    ledger = tripwire(resources.ledger, failpoints)
    fourthwall, luigisbox = upstream_clients(settings, resources, failpoints)
    busy = min(settings.retry_delays_s)

    async def mark_published(created: Any) -> None:
        await ledger.mark_published(design_approved.key_of_created(created))

    keeps = frozenset(s.shop_id for s in settings.shops if not s.supersede_revisions)
    designs = design_approved.Ports(
        fourthwall=fourthwall,
        ledger=ledger,
        quota=resources.quota,
        clock=utc_now,
        busy_delay_s=busy,
        keeps_revisions=keeps,
        artwork=(
            ArtworkFetcher(
                resources.artwork_http, settings.artwork_hosts, settings.artwork_max_bytes
            )
            if resources.artwork_http is not None
            else None
        ),
    )
    products = product_created.Ports(
        luigisbox=luigisbox,
        ledger=ledger,
        clock=utc_now,
        rules=settings.pins,
        identity_template_for=identity_templates(settings),
        busy_delay_s=busy,
        product_url_for=product_url_templates(settings),
        fourthwall=fourthwall,
        keeps_revisions=keeps,
    )
    withdrawals = design_withdrawn.Ports(
        fourthwall=fourthwall, luigisbox=luigisbox, ledger=ledger, clock=utc_now, busy_delay_s=busy
    )
    changes = fourthwall_changes.Ports(
        fourthwall=fourthwall, luigisbox=luigisbox, ledger=ledger, clock=utc_now, busy_delay_s=busy
    )
    available = {
        DESIGN_APPROVED_QUEUE.consumer: BoundConsumer(
            DESIGN_APPROVED_QUEUE,
            partial(design_approved.handle, ports=designs),
            design_approved.exhausted,
            mark_published,
        ),
        PRODUCT_CREATED_QUEUE.consumer: BoundConsumer(
            PRODUCT_CREATED_QUEUE,
            partial(product_created.handle, ports=products),
            product_created.exhausted,
        ),
        DESIGN_WITHDRAWN_QUEUE.consumer: BoundConsumer(
            DESIGN_WITHDRAWN_QUEUE,
            partial(design_withdrawn.handle, ports=withdrawals),
            design_withdrawn.exhausted,
            parks=False,
        ),
        FOURTHWALL_CHANGES_QUEUE.consumer: BoundConsumer(
            FOURTHWALL_CHANGES_QUEUE,
            partial(fourthwall_changes.handle, ports=changes),
            fourthwall_changes.exhausted,
            parks=False,
        ),
    }
    return [available[name] for name in names]


def consume_loop(
    bound: BoundConsumer,
    publisher: Publishes,
    settings: Settings,
    resources: Resources,
    releaser: Releaser,
) -> Consumer:
    return Consumer(
        names=bound.names,
        handle=bound.handle,
        exhausted=bound.exhausted,
        publisher=publisher,
        policy=retry_policy(settings),
        max_message_bytes=settings.max_message_bytes,
        after_publish=bound.after_publish,
        metrics=resources.metrics,
        ledger_down=resources.ledger_watch.down,
        park=parker(resources.parking, releaser, bound.names.queue) if bound.parks else None,
        tracer=resources.tracer,
    )


@dataclass(frozen=True)
class Wiring:
    """Everything ``Service`` runs, built once; closed with ``aclose`` by whoever wired it."""

    settings: Settings
    resources: Resources
    link: BrokerLink
    switches: tuple[ConsumerSwitch, ...]
    operations: Operations
    app: Litestar
    releaser: Releaser

    def readiness(self) -> Readiness:
        return readiness(self.link, self.switches, self.resources.ledger_watch)

    async def aclose(self) -> None:
        await self.resources.aclose()


async def wire(
    settings: Settings, consumer_names: tuple[str, ...], tracing: TracerProvider | None = None
) -> Wiring:
    """Open and build everything; ``tracing`` replaces the ``OTEL_*`` variables' provider (the
    tests' in-memory exporter)."""
    resources = await open_resources(settings, tracing)
    try:
        return assemble(settings, consumer_names, resources)
    except BaseException:
        await resources.aclose()
        raise


def assemble(settings: Settings, consumer_names: tuple[str, ...], resources: Resources) -> Wiring:
    failpoints = failpoints_of(settings)
    link = BrokerLink(settings.amqp_url, settings.http_timeout_s, resources.metrics.published)
    publisher = tripwire(link, failpoints)
    releaser = Releaser(
        resources.parking,
        publisher,
        poll_s=settings.parking_poll_s,
        lead_s=settings.quota_max_hold_s / 2,
        ledger_down=resources.ledger_watch.down,
    )
    switches = tuple(
        ConsumerSwitch(
            consume_loop(bound, publisher, settings, resources, releaser), settings.prefetch
        )
        for bound in build_consumers(settings, resources, consumer_names, failpoints)
    )
    resources.ledger_watch.watch(switches)
    operations = Operations(
        link, {s.name: s for s in switches}, settings.http_timeout_s, resources.tracer
    )
    health = partial(readiness, link, switches, resources.ledger_watch)
    app = create_app(
        health,
        webhook_ingresses(settings, resources, operations, link),
        fourthwall_ingress(settings, resources, operations, link),
        partial(
            render_metrics,
            resources.metrics,
            resources.ledger,
            link,
            switches,
            health,
            resources.parking,
            AppTokenStore(resources.db) if settings.fourthwall_app_client_id else None,
        ),
        admin(settings, resources, operations),
        console(settings, resources, operations),
        middleware=[HttpTelemetry(resources.metrics, resources.tracer)],
    )
    return Wiring(settings, resources, link, switches, operations, app, releaser)


def console(settings: Settings, resources: Resources, operations: Operations) -> Router | None:
    """The operator console, when an ADMIN_TOKEN is configured (otherwise off: 404)."""
    if not settings.admin_token:
        return None
    parts = ConsoleParts(
        token=settings.admin_token,
        sessions=ConsoleSessions(
            resources.db, settings.admin_token, settings.console_session_ttl_s
        ),
        logins=LoginAttempts(settings.console_login_attempts_per_minute),
        cookie_secure=settings.console_cookie_secure,
        ledger=resources.ledger,
        parking=resources.parking,
        quota=resources.quota,
        operations=operations,
        audit=Audit(resources.metrics),
        shops=tuple(shop.shop_id for shop in settings.shops),
        ledger_watch=resources.ledger_watch,
        app_grants=AppTokenStore(resources.db) if settings.fourthwall_app_client_id else None,
    )
    return console_router(parts)


def admin(settings: Settings, resources: Resources, operations: Operations) -> Router | None:
    """The admin routes, when an ADMIN_TOKEN is configured (otherwise off: 404)."""
    if not settings.admin_token:
        return None
    return admin_router(
        settings.admin_token,
        resources.ledger,
        resources.quota,
        operations,
        resources.parking,
        resources.metrics,
        resources.ledger_watch,
        AppTokenStore(resources.db) if settings.fourthwall_app_client_id else None,
    )


def fourthwall_ingress(
    settings: Settings, resources: Resources, operations: Operations, link: BrokerLink
) -> FourthwallIngress | None:
    """Fourthwall's webhook door, when at least one shop has a Fourthwall webhook secret, or
    a Fourthwall shop id and the app's HMAC key is set (the app's webhooks)."""
    app_key = settings.fourthwall_app_webhook_key
    shops = {
        shop.fourthwall_shop_id: FourthwallShop(shop.shop_id, shop.fourthwall_webhook_secret)
        for shop in settings.shops
        if shop.fourthwall_shop_id and (shop.fourthwall_webhook_secret or app_key)
    }
    if not shops:
        return None
    counter = resources.metrics.fourthwall_webhooks
    return FourthwallIngress(
        shops=shops,
        deliveries=Deliveries(resources.db),
        publish=operations.publish_producer_event,
        broker_ready=link.connected,
        ledger_available=lambda: resources.ledger_watch.available,
        count=lambda outcome: counter.labels(outcome).inc(),
        max_body_bytes=settings.max_message_bytes,
        app_key=app_key,
    )


def webhook_ingresses(
    settings: Settings, resources: Resources, operations: Operations, link: BrokerLink
) -> tuple[Ingress, ...]:
    """The webhook doors, one per producer event, when at least one producer secret is
    configured: one idempotency record and one rate per producer across them."""
    producers = webhook_producers(settings)
    if not producers:
        return ()
    deliveries = Deliveries(resources.db)
    rate = RateLimit(settings.webhook_rate_per_minute)
    return tuple(
        Ingress(
            producers=producers,
            deliveries=deliveries,
            publish=operations.publish_producer_event,
            broker_ready=link.connected,
            ledger=resources.ledger_watch,
            rate=rate,
            tolerance_s=settings.webhook_tolerance_s,
            max_body_bytes=settings.max_message_bytes,
            max_batch=settings.webhook_max_batch,
            event_type=event_type,
        )
        for event_type in PRODUCER_EVENTS.values()
    )
