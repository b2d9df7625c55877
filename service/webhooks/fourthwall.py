"""``POST /webhooks/fourthwall``: Fourthwall's own product events, as Fourthwall sends them.

Order of checks: size (413); the envelope (400 when the body is not one); the shop, by the
envelope's ``shopId`` against each ``[[shops]]`` table's ``fourthwall_shop_id``, and the
signature (``X-Fourthwall-Hmac-SHA256``, the base64 HMAC-SHA256 of the raw body under that
shop's ``fourthwall_webhook_secret``, or ``X-Fourthwall-Hmac-Apps-SHA256`` under the app's HMAC
key, ``FOURTHWALL_APP_WEBHOOK_KEY``, for an app's webhook; the ``shopId`` still picks the shop):
401, the same answer whatever failed, for an unknown shop,
a missing or a wrong signature; an event that is not about a product, or a test event: 200,
ignored; the idempotency record by Fourthwall's event id (a delivery seen before answers 200
and publishes nothing); then ``fourthwall.product.changed`` on ``merch.events`` with a
publisher confirm, and 200. Fourthwall wants its 200 within 2 s: nothing else is done here.

There is no timestamp in what Fourthwall signs, so a captured delivery could be replayed: the
event-id record turns a replay away while it is kept (24 h), and the consumer applies a change
only when it is newer than the last one applied to the product, so an older replay changes
nothing after that either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import msgspec
import structlog

from consumers.outcomes import stable_event_id
from consumers.ports import LedgerUnavailable
from contracts.cloudevents import CloudEvent
from contracts.events import FourthwallProductChangedV1, make_event
from contracts.fourthwall_webhooks import (
    ANSWER_WITHIN_S,
    APP_SIGNATURE_HEADER,
    PRODUCT_EVENTS,
    SIGNATURE_HEADER,
    WebhookEnvelope,
    WebhookProduct,
    product_of,
    signed_by,
)
from contracts.timestamps import now_iso
from service.secrets import Secret
from service.webhooks.deliveries import Deliveries
from service.webhooks.ingress import LEDGER_AWAY, Answer, problem

log = structlog.get_logger("merch_pipeline.webhooks")
UNAUTHORIZED = problem(401, "unauthorized", "The Fourthwall webhook signature did not verify.")
SOURCE = "urn:merch-pipeline:fourthwall-webhook"


@dataclass(frozen=True)
class FourthwallShop:
    shop_id: str  # ours
    secret: Secret | None  # its own webhook's; None: only the app's webhooks reach it


@dataclass
class FourthwallIngress:
    shops: Mapping[str, FourthwallShop]  # Fourthwall's shop id → ours and its secret
    deliveries: Deliveries
    publish: Callable[
        [CloudEvent, str | None], Awaitable[None]
    ]  # the event, the caller's traceparent
    broker_ready: Callable[[], bool]
    ledger_available: Callable[[], bool]
    count: Callable[[str], None]  # an outcome, for the metric
    max_body_bytes: int
    app_key: Secret | None = None  # the app's HMAC key (X-Fourthwall-Hmac-Apps-SHA256)

    def _verified(self, shop: FourthwallShop, headers: dict[str, str], body: bytes) -> bool:
        own = shop.secret is not None and signed_by(
            shop.secret.reveal(), body, headers.get(SIGNATURE_HEADER.lower())
        )
        by_app = self.app_key is not None and signed_by(
            self.app_key.reveal(), body, headers.get(APP_SIGNATURE_HEADER.lower())
        )
        return own or by_app

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        answer, outcome = await self._answer({k.lower(): v for k, v in headers.items()}, body)
        self.count(outcome)
        return answer

    async def _answer(self, headers: dict[str, str], body: bytes) -> tuple[Answer, str]:
        if len(body) > self.max_body_bytes:
            detail = f"The body is {len(body)} bytes; the limit is {self.max_body_bytes}."
            return problem(413, "too-large", detail), "invalid"
        try:
            envelope = msgspec.json.decode(body, type=WebhookEnvelope)
        except msgspec.MsgspecError as exc:
            return problem(400, "invalid-envelope", f"Not a Fourthwall webhook event: {exc}"), (
                "invalid"
            )
        shop = self.shops.get(envelope.shop_id)
        if shop is None or not self._verified(shop, headers, body):
            log.warning("fourthwall_webhook.unauthorized", event_id=envelope.id)
            return UNAUTHORIZED, "unknown_shop" if shop is None else "unauthorized"
        if envelope.type not in PRODUCT_EVENTS:
            return _ok({"ignored": f"type {envelope.type} is not a product event"}), "ignored_type"
        if envelope.test_mode:
            return _ok({"ignored": "a test event"}), "ignored_test"
        try:
            product = product_of(envelope)
        except msgspec.MsgspecError as exc:
            return problem(400, "invalid-product", f"$.data: {exc}"), "invalid"
        return await self._publish_once(envelope, product, shop, headers.get("traceparent"))

    async def _publish_once(
        self,
        envelope: WebhookEnvelope,
        product: WebhookProduct,
        shop: FourthwallShop,
        caller_traceparent: str | None,
    ) -> tuple[Answer, str]:
        if not self.broker_ready():
            return _unavailable("The broker is not reachable; nothing was accepted."), (
                "unavailable"
            )
        if not self.ledger_available():
            return LEDGER_AWAY, "unavailable"
        key = f"fourthwall:{envelope.id}"
        try:
            seen = await self.deliveries.claim(key, f"fourthwall:{shop.shop_id}", 1)
        except LedgerUnavailable:
            return LEDGER_AWAY, "unavailable"
        if seen is not None:
            return _ok({"duplicate": True, "id": envelope.id}), "duplicate"
        try:
            await asyncio.wait_for(
                self.publish(changed_event(envelope, product, shop.shop_id), caller_traceparent),
                ANSWER_WITHIN_S,
            )
        except Exception as exc:  # nothing accepted: Fourthwall's retry carries it
            with contextlib.suppress(LedgerUnavailable):
                await self.deliveries.release(key)
            log.warning("fourthwall_webhook.publish_failed", event_id=envelope.id, error=str(exc))
            return _unavailable("The broker did not confirm the event."), "unavailable"
        with contextlib.suppress(LedgerUnavailable):
            await self.deliveries.published(key)
        log.info("fourthwall_webhook.accepted", event_id=envelope.id, product_id=product.id)
        return _ok({"duplicate": False, "id": envelope.id}), "accepted"


def changed_event(envelope: WebhookEnvelope, product: WebhookProduct, shop_id: str) -> CloudEvent:
    data = FourthwallProductChangedV1(
        shop_id=shop_id,
        product_id=product.id,
        fourthwall_event_id=envelope.id,
        fourthwall_type=envelope.type,
        name=product.name,
        state=product.access.type,
        access=product.access.type,
        stock=product.state.type,
        changed_at=product.updated_at or envelope.created_at,
        image_url=product.images[0].url if product.images else None,
    )
    event_id = stable_event_id("fourthwall.product.changed", envelope.id)
    event = make_event(
        data,
        event_id=event_id,
        time=now_iso(),
        correlation_id=event_id,
        traceparent=None,
        subject=product.id,
    )
    return msgspec.structs.replace(event, source=SOURCE)


def _ok(body: dict[str, object]) -> Answer:
    return Answer(200, body, {})


def _unavailable(detail: str) -> Answer:
    return problem(503, "broker-unavailable", detail + " Retry the delivery.", {"Retry-After": "5"})
