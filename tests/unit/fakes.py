"""Fakes of the handler ports (unit tests only; integration tests use the real sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from consumers.ports import (
    Delivery,
    DesignKey,
    DesignProduct,
    DesignRecord,
    DesignState,
    LeaseLost,
    Picture,
    ProductRecord,
    Slot,
    UpstreamError,
)
from contracts.fourthwall import (
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductResponseV1,
    DesignPipelineImageV1,
    MediaImageV1,
    ProductAccessV1,
    ProductLifecycleState,
    ProductStateV1,
    ProductTemplateV1,
    ProductV1,
)
from contracts.luigisbox import ContentObject, ContentRef, ScopeRequest, ScopeResponse

IMAGE = DesignPipelineImageV1(url="u", width=1, height=1, style="s", color="Black")


@dataclass
class FakeFourthwall:
    fail_customization: Exception | None = None
    fail_product: Exception | None = None
    fail_product_after_creating: Exception | None = None  # created, but the answer is lost
    customizations: list[CreateCustomizationRequestV1] = field(default_factory=list)
    products: list[CreateCustomizationProductRequestV1] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # product_id → state set
    template: ProductTemplateV1 | Exception | None = None
    template_reads: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)  # content hashes uploaded, in order
    fail_upload: Exception | None = None

    async def upload_image(self, shop_id: str, picture: Picture) -> MediaImageV1:
        if self.fail_upload:
            raise self.fail_upload
        self.uploads.append(picture.content_hash)
        image_id = f"img_up_{len(self.uploads)}"
        return MediaImageV1(
            id=image_id, uri=f"media://{image_id}", width=picture.width, height=picture.height
        )

    async def create_customization(
        self, shop_id: str, request: CreateCustomizationRequestV1
    ) -> CreateCustomizationResponseV1:
        if self.fail_customization:
            raise self.fail_customization
        self.customizations.append(request)
        return CreateCustomizationResponseV1(
            customization_id=f"cst_{len(self.customizations)}", images=[IMAGE]
        )

    async def set_product_state(
        self, shop_id: str, product_id: str, state: ProductLifecycleState
    ) -> ProductV1:
        self.states[product_id] = state
        return ProductV1(
            id=product_id,
            state=ProductStateV1(type="AVAILABLE"),
            access=ProductAccessV1(type=state),
        )

    async def product_template(self, shop_id: str, template_id: str) -> ProductTemplateV1:
        self.template_reads.append(template_id)
        if isinstance(self.template, Exception):
            raise self.template
        return self.template or ProductTemplateV1(product_id=template_id)  # judges nothing

    async def create_product(
        self, shop_id: str, request: CreateCustomizationProductRequestV1
    ) -> CreateProductResponseV1:
        if self.fail_product:
            raise self.fail_product
        self.products.append(request)
        if self.fail_product_after_creating:
            raise self.fail_product_after_creating
        return CreateProductResponseV1(
            product_id=f"prd_{len(self.products)}",
            customization_id=request.customization_id,
            images=[IMAGE],
        )


@dataclass
class FakeLuigisBox:
    fail: Exception | None = None
    fail_after_creating: Exception | None = None  # created, but the answer is lost
    scopes: list[ScopeRequest] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    fail_content: Exception | None = None
    content: list[ContentObject] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "content" / "scope", as called

    deleted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    async def delete_scope(self, shop_id: str, scope_id: str) -> bool:
        self.deleted.append(scope_id)
        return True

    async def remove_content(self, shop_id: str, refs: list[ContentRef]) -> None:
        self.removed += [r.identity for r in refs]

    async def index_content(self, shop_id: str, item: ContentObject) -> None:
        if self.fail_content:
            raise self.fail_content
        self.content.append(item)
        self.order.append("content")

    async def create_scope(self, shop_id: str, request: ScopeRequest) -> ScopeResponse:
        if self.fail:
            raise self.fail
        self.scopes.append(request)
        self.order.append("scope")
        if self.fail_after_creating:
            raise self.fail_after_creating
        return self._response(len(self.scopes) - 1)

    bulk_calls: int = 0
    unlisted: int = 0  # how many listings still leave bulk-made scopes out (a lagging index)
    hidden_after_bulk: set[int] = field(default_factory=set)
    conflicting: set[str] = field(default_factory=set)  # targets a bulk create keeps out

    async def create_scopes(self, shop_id: str, requests: list[ScopeRequest]) -> None:
        if self.fail:
            raise self.fail
        self.bulk_calls += 1
        for request in requests:
            if request.target_identity in self.conflicting:
                continue  # conflict_strategy=ignore: what Luigi's Box holds is kept
            self.scopes.append(request)
            if self.unlisted:
                self.hidden_after_bulk.add(len(self.scopes) - 1)
        self.order.append("bulk")

    async def scopes_tagged(self, shop_id: str, tag: str) -> list[ScopeResponse]:
        self.lookups.append(tag)
        hidden = self.hidden_after_bulk if self.unlisted else set()
        if self.unlisted:
            self.unlisted -= 1
        return [
            self._response(n)
            for n, s in enumerate(self.scopes)
            if tag in (s.tags or []) and n not in hidden
        ]

    async def find_scope(self, shop_id: str, tag: str) -> ScopeResponse | None:
        self.lookups.append(tag)
        found = [n for n, s in enumerate(self.scopes) if tag in (s.tags or [])]
        return self._response(found[0]) if found else None

    def _response(self, index: int) -> ScopeResponse:
        request = self.scopes[index]
        return ScopeResponse(
            id=f"scope-{index + 1}",
            model=request.model,
            target_type=request.target_type,
            created_at="now",
            tags=request.tags,
        )


def upstream_error(code: str, retryable: bool, status: int = 400) -> UpstreamError:
    return UpstreamError(
        api="fourthwall", status=status, code=code, detail="d", retryable=retryable
    )


@dataclass
class FakeLedger:
    """An in-memory DesignLedger + ProductLedger with the same lease semantics."""

    records: dict[DesignKey, DesignRecord] = field(default_factory=dict)
    leases: dict[object, str] = field(default_factory=dict)
    scopes: dict[str, dict[str, bytes]] = field(default_factory=dict)
    scopes_requested: dict[str, set[str]] = field(default_factory=dict)
    product_states: dict[str, str] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)  # product_id → catalogue identity
    retired: list[str] = field(default_factory=list)
    images: dict[tuple[str, str], str] = field(default_factory=dict)  # (shop, hash) → image id

    async def uploaded_image(self, shop_id: str, content_hash: str) -> str | None:
        return self.images.get((shop_id, content_hash))

    async def record_uploaded_image(self, shop_id: str, content_hash: str, image_id: str) -> None:
        self.images.setdefault((shop_id, content_hash), image_id)

    def _check(self, key: object, token: str) -> None:
        if self.leases.get(key) != token:
            raise LeaseLost(str(key))

    def _update(self, key: DesignKey, token: str, **changes: object) -> None:
        self._check(key, token)
        self.records[key] = msgspec.structs.replace(self.records[key], **changes)

    async def claim(self, key: DesignKey, delivery: Delivery) -> DesignRecord | None:
        if key in self.leases:
            return None
        record = self.records.setdefault(key, DesignRecord(key=key, state="received"))
        self.leases[key] = delivery.token
        newest = max(
            k.revision
            for k in self.records
            if (k.shop_id, k.design_id) == (key.shop_id, key.design_id)
        )
        self.records[key] = msgspec.structs.replace(
            record, attempts=record.attempts + 1, newest_revision=newest
        )
        return self.records[key]

    async def record_superseded(self, key: DesignKey, token: str, newest: int) -> None:
        self._update(key, token, state="superseded")

    async def design_products(self, shop_id: str, design_id: str) -> list[DesignProduct]:
        return [
            DesignProduct(
                revision=k.revision,
                product_id=r.product_id,
                state=self.product_states.get(r.product_id),
            )
            for k, r in sorted(self.records.items(), key=lambda kv: kv[0].revision)
            if (k.shop_id, k.design_id) == (shop_id, design_id) and r.product_id
        ]

    async def record_retired(self, product_id: str, token: str, state: str) -> None:
        self._check(product_id, token)
        self.product_states[product_id] = state
        self.retired.append(product_id)

    async def record_customization(
        self, key: DesignKey, token: str, customization_id: str, *, product_requested: bool = False
    ) -> None:
        self._update(key, token, state="customization_created", customization_id=customization_id)
        if product_requested:
            self._update(key, token, product_requested=True)

    async def record_product_requested(self, key: DesignKey, token: str, requested: bool) -> None:
        self._update(key, token, product_requested=requested)

    async def record_product(
        self, key: DesignKey, token: str, product_id: str, product_event: bytes
    ) -> None:
        self._update(
            key, token, state="product_created", product_id=product_id, product_event=product_event
        )

    async def record_error(
        self, key: DesignKey, token: str, *, stage: str, code: str, detail: str
    ) -> None:
        self._check(key, token)

    async def record_failed(
        self,
        key: DesignKey,
        token: str,
        *,
        state: DesignState,
        stage: str,
        code: str,
        detail: str,
        failed_event: bytes,
    ) -> None:
        self._update(key, token, state=state, failed_event=failed_event)

    async def reopen(self, key: DesignKey, token: str, operator: str) -> DesignRecord:
        record = self.records[key]
        state: DesignState = "customization_created" if record.customization_id else "received"
        self._update(key, token, state=state, failed_event=None)
        return self.records[key]

    async def release(self, key: DesignKey, token: str) -> None:
        if self.leases.get(key) == token:
            del self.leases[key]

    async def claim_product(
        self, product_id: str, shop_id: str, design_id: str, token: str
    ) -> ProductRecord | None:
        if product_id in self.leases:
            return None
        self.leases[product_id] = token
        return ProductRecord(
            scopes=dict(self.scopes.get(product_id, {})),
            requested=frozenset(self.scopes_requested.get(product_id, set())),
            indexed=self.content.get(product_id),
            state=self.product_states.get(product_id, "pins_pending"),
            newest_revision=max(
                (p.revision for p in await self.design_products(shop_id, design_id)), default=None
            ),
        )

    async def scope_ids(self, product_id: str) -> dict[str, str]:
        return {
            rule: msgspec.json.decode(raw)["scope_id"]
            for rule, raw in self.scopes.get(product_id, {}).items()
        }

    async def record_content(
        self, product_id: str, token: str, identity: str, available: bool
    ) -> None:
        self._check(product_id, token)
        self.content[product_id] = identity

    async def record_scope_requested(self, product_id: str, token: str, rule_key: str) -> None:
        self._check(product_id, token)
        self.scopes_requested.setdefault(product_id, set()).add(rule_key)

    async def record_scope(
        self, product_id: str, token: str, rule_key: str, scope_id: str, scope: bytes
    ) -> None:
        self._check(product_id, token)
        self.scopes.setdefault(product_id, {}).setdefault(rule_key, scope)

    async def finish_product(self, product_id: str, token: str, state: str | None) -> None:
        if self.leases.get(product_id) == token:
            del self.leases[product_id]
            if state:
                self.product_states[product_id] = state


def delivery(
    attempt: int = 1,
    final: bool = False,
    token: str = "t-1",
    ticket: str | None = None,
    retry_by: str | None = None,
) -> Delivery:
    return Delivery(
        attempt=attempt,
        final=final,
        token=token,
        event_id="e-1",
        quota_ticket=ticket,
        retry_by=retry_by,
    )


@dataclass
class FakeQuota:
    """Grants ``free`` slots, then plans one ticket per waiting delivery."""

    free: int = 1_000
    wait_s: float = 12.0
    taken: list[str | None] = field(default_factory=list)
    throttles: list[float | None] = field(default_factory=list)
    finished_calls: list[str | None] = field(default_factory=list)
    cancelled: list[str | None] = field(default_factory=list)

    async def take(self, shop_id: str, ticket: str | None, *, pair: bool = False) -> Slot:
        self.taken.append(ticket)
        if ticket is not None and ticket.endswith(".then"):  # its first call has answered
            self.finished_calls.append(ticket.removesuffix(".then"))
        if ticket == "due":  # the planned slot has come: it is this delivery's own
            return Slot(granted=True, ticket="due", then="due.then" if pair else None)
        if self.free > 0:
            self.free -= 1
            ticket = f"call-{len(self.taken)}"
            return Slot(granted=True, ticket=ticket, then=f"{ticket}.then" if pair else None)
        ticket = ticket or "planned"
        then = f"{ticket}.then" if pair else None
        return Slot(granted=False, wait_s=self.wait_s, ticket=ticket, then=then)

    async def finished(self, shop_id: str, slot: Slot) -> None:
        self.finished_calls.append(slot.ticket)

    async def throttled(self, shop_id: str, retry_after_s: float | None) -> float:
        self.throttles.append(retry_after_s)
        return retry_after_s or 60.0

    async def cancel(self, shop_id: str, ticket: str | None) -> None:
        self.cancelled.append(ticket)


@dataclass
class FakeMessage:
    """An incoming AMQP message as the consume loop sees it, recording how it was settled."""

    body: bytes
    content_type: str | None
    headers: dict[str, Any]
    message_id: str | None = "m-1"
    correlation_id: str | None = None
    content_encoding: str | None = None
    type: str | None = None
    timestamp: datetime | None = None
    app_id: str | None = None
    routing_key: str | None = "design.approved"
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("nack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("reject")


@dataclass
class RecordingPublisher:
    """Publishes nowhere: the routing keys of events and the queues of copies, in order."""

    events: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)
    copied: list[Any] = field(default_factory=list)  # the copies themselves

    async def publish_event(self, event: Any, routing_key: str) -> None:
        self.events.append(routing_key)

    async def send_to_queue(self, queue: str, message: Any) -> None:
        self.copies.append(queue)
        self.copied.append(message)


@dataclass
class RecordingQueue:
    """Stands in for an aio-pika queue: what was consumed and cancelled, in order."""

    calls: list[str] = field(default_factory=list)
    channel: Any = field(default_factory=lambda: type("Channel", (), {"is_closed": False})())

    async def consume(self, callback: Any) -> str:
        self.calls.append("consume")
        return f"tag-{len(self.calls)}"

    async def cancel(self, tag: str) -> None:
        self.calls.append(f"cancel {tag}")
