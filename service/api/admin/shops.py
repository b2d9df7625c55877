"""``/admin/shops``: a shop's Fourthwall quota as the limiter sees it; the shops' Fourthwall app
grants (active, paused with Fourthwall's reason, pending)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from service.api.admin.refs import ShopIdPath
from service.api.admin.schemas import QuotaState
from service.api.problems import problem_responses
from service.errors import Refused
from service.quota.store import QuotaStore
from service.store.app_tokens import AppGrantState, AppTokenStore


class ShopsController(Controller):
    path = "/shops"

    @get(
        "/{shop_id:str}/quota",
        summary="The shop's Fourthwall quota right now",
        responses=problem_responses(400, 401, 403, 409),
    )
    async def shop_quota(
        self, shop_id: ShopIdPath, quota: NamedDependency[QuotaStore | None]
    ) -> QuotaState:
        if quota is None:
            raise Refused("the quota limiter is switched off")
        return await quota.state(shop_id)

    @get(
        "/app-grants",
        summary="The shops' Fourthwall app grants: active, paused (and why) or pending",
        description=(
            "A shop that installed the Fourthwall app is paused when Fourthwall refuses its "
            "refresh token (uninstalled, revoked): its designs fail with "
            "FOURTHWALL_APP_GRANT_REFUSED until a new installation's refresh token is "
            "configured (docs/operations.md). No token is ever shown."
        ),
        responses=problem_responses(401, 403, 409),
    )
    async def app_grants(
        self, app_grants: NamedDependency[AppTokenStore | None]
    ) -> list[AppGrantState]:
        if app_grants is None:
            raise Refused("no Fourthwall app is configured (FOURTHWALL_APP_CLIENT_ID)")
        return await app_grants.grants()
