"""The bare baseline the overhead benchmark compares the service with: a straight-line aio-pika +
httpx script doing the same broker and upstream work per design, and nothing else.

design.approved → POST customizations → POST products → publish product.created (confirmed) →
consume it → the product's signed content update into the Luigi's Box catalogue → one signed
Luigi's Box scope per pin rule → publish pins.created (confirmed). No
ledger, no limiter, no retries, no logging, no metrics: what a design costs at the least.

    python -m bench.baseline --amqp-url URL --api-url URL --sandbox-config sandbox.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import signal
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
import msgspec

from consumers.content import content_object
from consumers.design_approved import customization_request, product_created, product_request
from consumers.pin_rules import PinRules, plan_scopes
from contracts.cloudevents import STRUCTURED_CONTENT_TYPE, decode_structured, encode_structured
from contracts.events import (
    DESIGN_APPROVED,
    EXCHANGE,
    PRODUCT_CREATED,
    PinScope,
    PinsCreatedV1,
    ProductCreatedV1,
    decode_data,
    make_event,
)
from contracts.fourthwall import CreateCustomizationResponseV1, CreateProductResponseV1
from contracts.luigisbox import CONTENT_PATH, CONTENT_TYPE, ContentUpdate, ScopeResponse, scope_path
from contracts.timestamps import now_iso
from service.sandbox.config import SandboxConfig, Tracker, load_config
from service.upstreams import luigisbox_auth

QUEUES = {"baseline.design-approved": DESIGN_APPROVED, "baseline.product-created": PRODUCT_CREATED}
_encoder = msgspec.json.Encoder()


class Baseline:
    def __init__(self, http: httpx.AsyncClient, config: SandboxConfig, exchange: object) -> None:
        self.http = http
        self.exchange: aio_pika.abc.AbstractExchange = exchange  # type: ignore[assignment]
        self.basic = {
            s.shop_id: "Basic " + base64.b64encode(f"{s.username}:{s.password}".encode()).decode()
            for s in config.shops
        }
        self.trackers = {s.shop_id: t for s, t in zip(config.shops, config.trackers, strict=True)}
        self.rules = PinRules()

    async def publish(self, data: object, routing_key: str) -> None:
        event = make_event(
            data,  # type: ignore[arg-type]
            event_id=str(uuid.uuid4()),
            time=now_iso(),
            correlation_id=None,
            traceparent=None,
        )
        message = aio_pika.Message(
            encode_structured(event),
            content_type=STRUCTURED_CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.exchange.publish(message, routing_key=routing_key)

    async def design_approved(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        design = decode_data(decode_structured(message.body), DESIGN_APPROVED)
        headers = {"Authorization": self.basic[design.shop_id], "Content-Type": "application/json"}
        answer = await self.http.post(
            "/open-api/v1.0/customizations",
            content=_encoder.encode(customization_request(design)),  # type: ignore[arg-type]
            headers=headers,
        )
        sketch = msgspec.json.decode(answer.content, type=CreateCustomizationResponseV1)
        answer = await self.http.post(
            "/open-api/v1.0/products",
            content=_encoder.encode(product_request(design, sketch.customization_id)),  # type: ignore[arg-type]
            headers=headers,
        )
        product = msgspec.json.decode(answer.content, type=CreateProductResponseV1)
        created = product_created(
            design,  # type: ignore[arg-type]
            customization_id=sketch.customization_id,
            product_id=product.product_id or "",
            images=[],
            created_at=now_iso(),
        )
        await self.publish(created, PRODUCT_CREATED.routing_key)
        await message.ack()

    async def signed(self, tracker: Tracker, path: str, body: object) -> httpx.Response:
        date = luigisbox_auth.now_http_date()
        sig = luigisbox_auth.signature(tracker.private_key, "POST", CONTENT_TYPE, date, path)
        return await self.http.post(
            path,
            content=_encoder.encode(body),
            headers={
                "Content-Type": CONTENT_TYPE,
                "Date": date,
                "Authorization": luigisbox_auth.authorization(tracker.tracker_id, sig),
            },
        )

    async def product_created(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        product = decode_data(decode_structured(message.body), PRODUCT_CREATED)
        assert isinstance(product, ProductCreatedV1)
        tracker = self.trackers[product.shop_id]
        template = self.rules.item_identity_template
        item = content_object(product, template, None)
        await self.signed(tracker, CONTENT_PATH, ContentUpdate(objects=[item]))
        path = scope_path(tracker.tracker_id)
        scopes = []
        now = datetime.now(UTC)
        for _, request in plan_scopes(product, self.rules, template, now):
            answer = await self.signed(tracker, path, request)
            created = msgspec.json.decode(answer.content, type=ScopeResponse)
            pin = request.pin_definitions[0]
            scopes.append(
                PinScope(
                    scope_id=created.id,
                    model=request.model,
                    target_type=request.target_type,
                    target_identity=request.target_identity,
                    position=pin.position,
                    pin_identity=pin.pin_identity,
                )
            )
        pins = PinsCreatedV1(
            shop_id=product.shop_id,
            design_id=product.design_id,
            product_id=product.product_id,
            scopes=scopes,
        )
        await self.publish(pins, "pins.created")
        await message.ack()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--sandbox-config", required=True)
    parser.add_argument("--prefetch", type=int, default=16)
    args = parser.parse_args()
    config = load_config(args.sandbox_config)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connection = await aio_pika.connect_robust(args.amqp_url)
    async with connection, httpx.AsyncClient(base_url=args.api_url, timeout=30) as http:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=args.prefetch)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        baseline = Baseline(http, config, exchange)
        handlers = {
            "baseline.design-approved": baseline.design_approved,
            "baseline.product-created": baseline.product_created,
        }
        for name, event_type in QUEUES.items():
            queue = await channel.declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(exchange, routing_key=event_type.routing_key)
            await queue.consume(handlers[name])  # type: ignore[arg-type]
        print("ready", flush=True)
        await stop.wait()
        with contextlib.suppress(Exception):
            await channel.close()


if __name__ == "__main__":
    asyncio.run(main())
