"""The service's Prometheus metrics, on a registry of their own (built once, passed in), with
the process's and the runtime's collectors (``process_*``, ``python_*``) and the build."""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from service import build

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOP_WAITING_SHOPS = 10  # the shops labelled on the waiting gauges: never every shop


class Metrics:
    def __init__(self, version: str | None = None, revision: str | None = None) -> None:
        self.registry = CollectorRegistry()
        # The default registry's collectors read the process and the interpreter at scrape
        # time; sharing them is safe (they hold no series of their own).
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        Gauge(
            "merch_pipeline_build_info",
            "The running build: always 1, labelled with the package version and the source "
            "revision the image was built from",
            ["version", "revision"],
            registry=self.registry,
        ).labels(version or build.version(), revision or build.revision()).set(1)
        self._http(self.registry)
        self._messages(self.registry)
        self._upstreams(self.registry)
        self._state(self.registry)
        self._paused_reported: dict[tuple[str, str], float] = {}

    def _http(self, r: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "merch_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "merch_http_request_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)

    def _messages(self, r: CollectorRegistry) -> None:
        self.messages = Counter(
            "merch_messages",
            "Messages settled, by queue and outcome (done, rejected, exhausted, "
            "dead-lettered, retry-scheduled, deferred, handed-back, unsettled)",
            ["queue", "outcome"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "merch_handler_seconds",
            "Time to handle and settle one message",
            ["queue"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.deferrals = Counter(
            "merch_deferrals",
            "Messages deferred without spending an attempt, by reason "
            "(quota, throttled, upload_throttled, design_busy, product_busy, lease_lost, "
            "scopes_settling)",
            ["queue", "reason"],
            registry=r,
        )
        self.publishes = Counter(
            "merch_broker_publishes",
            "Messages this process published with a broker confirm, by kind (event: to "
            "merch.events; queue: straight to a queue, as retries, deferrals, hand-backs, "
            "releases and dead letters)",
            ["kind"],
            registry=r,
        )
        self.ledger_statements = Counter(
            "merch_ledger_statements",
            "SQL statements this process sent to the ledger's database (transaction BEGIN and "
            "COMMIT included)",
            registry=r,
        )
        self._statements_reported = 0
        self.quota_wait_seconds = Histogram(
            "merch_quota_wait_seconds",
            "How long a message waits for its shop's quota slot",
            buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 3600),
            registry=r,
        )

    def _upstreams(self, r: CollectorRegistry) -> None:
        self.upstream_calls = Counter(
            "merch_upstream_calls",
            "Upstream HTTP calls by API, endpoint and status "
            "(status 'error' when no HTTP answer came)",
            ["api", "endpoint", "status"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "merch_upstream_seconds",
            "Upstream call duration",
            ["api", "endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.throttled = Counter(
            "merch_upstream_throttled", "429 answers by API", ["api"], registry=r
        )

    def _state(self, r: CollectorRegistry) -> None:
        self.designs = Gauge(
            "merch_ledger_designs", "Designs in the ledger by state", ["state"], registry=r
        )
        self.app_paused = Gauge(
            "merch_fourthwall_app_paused_shops",
            "Shops paused because Fourthwall refused their app grant (GET /admin/shops/app-grants)",
            registry=r,
        )
        self.parked = Gauge(
            "merch_parked_designs",
            "Designs parked in the ledger until their shop's quota slot (every replica's)",
            registry=r,
        )
        self.parked_due = Gauge(
            "merch_parked_designs_due",
            "Parked designs whose slot has come and that no replica has released yet",
            registry=r,
        )
        self.shop_waiting = Gauge(
            "merch_quota_shop_waiting_designs",
            f"Designs parked for quota, for the {TOP_WAITING_SHOPS} shops waiting longest "
            "only (a bounded label set, made anew at each scrape)",
            ["shop_id"],
            registry=r,
        )
        self.shop_wait_ahead = Gauge(
            "merch_quota_shop_wait_ahead_seconds",
            f"Seconds until the last parked design is due, for the {TOP_WAITING_SHOPS} shops "
            "waiting longest only",
            ["shop_id"],
            registry=r,
        )
        self.broker_connected = Gauge(
            "merch_broker_connected", "1 while the broker connection is up", registry=r
        )
        self.dead_letters = Gauge(
            "merch_dead_letter_messages",
            "Messages waiting in each dead-letter queue (read from the broker at scrape time)",
            ["queue"],
            registry=r,
        )
        self.fourthwall_webhooks = Counter(
            "merch_fourthwall_webhooks",
            "Fourthwall webhook deliveries by outcome (accepted, duplicate, ignored_type, "
            "ignored_test, unknown_shop, unauthorized, invalid, unavailable)",
            ["outcome"],
            registry=r,
        )
        self.admin_actions = Counter(
            "merch_admin_actions",
            "Operator actions through the admin API, by action",
            ["action"],
            registry=r,
        )
        self.in_flight = Gauge(
            "merch_consumer_in_flight",
            "Messages being handled, by consumer",
            ["consumer"],
            registry=r,
        )
        self.ledger_up = Gauge(
            "merch_ledger_up",
            "1 while the ledger's database answers, 0 while this process holds its consumers "
            "for it",
            registry=r,
        )
        self.paused_seconds = Counter(
            "merch_consumer_paused_seconds",
            "Time a consumer did not take messages, by reason (operator, ledger, shutdown)",
            ["consumer", "reason"],
            registry=r,
        )

    def report_paused(self, consumer: str, totals: dict[str, float]) -> None:
        """Bring the paused-seconds counter up to a switch's totals (read at scrape time)."""
        for reason, total in totals.items():
            key = (consumer, reason)
            grown = total - self._paused_reported.get(key, 0.0)
            if grown > 0:
                self.paused_seconds.labels(consumer, reason).inc(grown)
                self._paused_reported[key] = total

    def report_waiting(self, longest: list[tuple[str, int, float]]) -> None:
        """The waiting gauges hold exactly these shops (the others' series are dropped)."""
        self.shop_waiting.clear()
        self.shop_wait_ahead.clear()
        for shop_id, designs, ahead_s in longest:
            self.shop_waiting.labels(shop_id).set(designs)
            self.shop_wait_ahead.labels(shop_id).set(round(ahead_s, 3))

    def published(self, kind: str) -> None:
        self.publishes.labels(kind).inc()

    def report_statements(self, total: int) -> None:
        """Bring the statements counter up to the database's tally (read at scrape time)."""
        if total > self._statements_reported:
            self.ledger_statements.inc(total - self._statements_reported)
            self._statements_reported = total

    def observe_call(self, api: str, endpoint: str, status: int | None, seconds: float) -> None:
        self.upstream_calls.labels(api, endpoint, str(status) if status else "error").inc()
        self.upstream_seconds.labels(api, endpoint).observe(seconds)
        if status == 429:
            self.throttled.labels(api).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
