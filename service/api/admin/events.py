"""``/admin/events``: publish a producer's event after validating it strictly (the try-it door
for producers: a field the contract does not define is refused, where a consumer ignores it)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency

from contracts.cloudevents import decode_structured
from contracts.errors import ContractError
from contracts.events import (
    DESIGN_APPROVED,
    DESIGN_WITHDRAWN,
    EventType,
    decode_data,
    unknown_fields,
)
from service.api.admin.audit import Acting
from service.api.admin.schemas import PublishedEvent
from service.api.problems import problem_responses
from service.errors import ActionError, Unavailable


class EventsController(Controller):
    path = "/events"

    @post(
        "/design-approved",
        status_code=202,
        summary="Validate a design.approved CloudEvent and publish it to merch.events",
        responses=problem_responses(400, 401, 403, 503),
    )
    async def publish_design(
        self,
        request: Request[Any, Any, Any],
        acting: NamedDependency[Acting],
    ) -> PublishedEvent:
        return await _publish(await request.body(), acting, DESIGN_APPROVED)

    @post(
        "/design-withdrawn",
        status_code=202,
        summary="Validate a design.withdrawn CloudEvent and publish it to merch.events",
        responses=problem_responses(400, 401, 403, 503),
    )
    async def publish_withdrawal(
        self,
        request: Request[Any, Any, Any],
        acting: NamedDependency[Acting],
    ) -> PublishedEvent:
        return await _publish(await request.body(), acting, DESIGN_WITHDRAWN)


async def _publish(body: bytes, acting: Acting, expected: EventType) -> PublishedEvent:
    try:
        event = decode_structured(body)
        decode_data(event, expected)
    except ContractError as exc:
        raise ActionError(f"{exc.reason}: {exc.detail}", slug="invalid-event") from None
    unknown = unknown_fields(event.data, expected)
    if unknown:
        raise ActionError(
            f"unknown_field: {', '.join(unknown)} (not in {expected.name}; "
            "a consumer would ignore it)",
            slug="unknown-field",
        )
    try:
        await acting.operations.publish_producer_event(event)
    except Exception as exc:
        raise Unavailable(
            "the broker did not confirm the event", slug="broker-unavailable"
        ) from exc
    acting.done("publish", event_id=event.id)
    return PublishedEvent(id=event.id, routing_key=expected.routing_key)
