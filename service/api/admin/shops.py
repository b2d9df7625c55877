"""``/admin/shops``: a shop's Fourthwall quota as the limiter sees it."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from service.api.admin.refs import ShopIdPath
from service.api.admin.schemas import QuotaState
from service.api.problems import problem_responses
from service.errors import Refused
from service.quota.store import QuotaStore


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
