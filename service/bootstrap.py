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
from service.broker.consumer import Exhausted
from service.broker.topology import DESIGN_APPROVED_QUEUE, PRODUCT_CREATED_QUEUE, QueueNames
from service.settings import Settings
from service.upstreams.credentials import fourthwall_auth, identity_templates, luigisbox_account
from service.upstreams.fourthwall import FourthwallClient
from service.upstreams.http import new_http_client
from service.upstreams.luigisbox import LuigisBoxClient


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BoundConsumer:
    names: QueueNames
    handle: Callable[[Any, int], Awaitable[Outcome]]
    exhausted: Exhausted


@dataclass(frozen=True)
class Upstreams:
    fourthwall_http: httpx.AsyncClient
    luigisbox_http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.fourthwall_http.aclose()
        await self.luigisbox_http.aclose()


def build_upstreams(settings: Settings) -> Upstreams:
    return Upstreams(
        fourthwall_http=new_http_client(settings.fourthwall_api_url, settings.http_timeout_s),
        luigisbox_http=new_http_client(settings.luigisbox_api_url, settings.http_timeout_s),
    )


def build_consumers(
    settings: Settings, upstreams: Upstreams, names: tuple[str, ...]
) -> list[BoundConsumer]:
    fourthwall = FourthwallClient(upstreams.fourthwall_http, partial(fourthwall_auth, settings))
    luigisbox = LuigisBoxClient(upstreams.luigisbox_http, partial(luigisbox_account, settings))
    available = {
        DESIGN_APPROVED_QUEUE.consumer: BoundConsumer(
            DESIGN_APPROVED_QUEUE,
            partial(
                design_approved.handle,
                ports=design_approved.Ports(fourthwall=fourthwall, clock=utc_now),
            ),
            design_approved.exhausted,
        ),
        PRODUCT_CREATED_QUEUE.consumer: BoundConsumer(
            PRODUCT_CREATED_QUEUE,
            partial(
                product_created.handle,
                ports=product_created.Ports(
                    luigisbox=luigisbox,
                    clock=utc_now,
                    rules=settings.pins,
                    identity_template_for=identity_templates(settings),
                ),
            ),
            product_created.exhausted,
        ),
    }
    return [available[name] for name in names]
