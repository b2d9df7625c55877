"""Which limits a shop has: its ``[[shops]]`` overrides, else the environment's."""

from __future__ import annotations

from service.quota.slots import Limit
from service.settings import Settings


def limits_for(settings: Settings, shop_id: str) -> tuple[Limit, Limit]:
    """(heavy limit, general limit) for ``shop_id``."""
    shop = settings.shop(shop_id)

    def pick(override: float | None, default: float) -> float:
        return default if override is None else override

    heavy = Limit(
        calls=int(
            pick(shop.fourthwall_heavy_calls if shop else None, settings.fourthwall_heavy_calls)
        ),
        window_s=pick(
            shop.fourthwall_heavy_window_s if shop else None, settings.fourthwall_heavy_window_s
        ),
        margin=settings.quota_margin,
        margin_min_s=settings.quota_margin_min_s,
    )
    general = Limit(
        calls=int(pick(shop.fourthwall_calls if shop else None, settings.fourthwall_calls)),
        window_s=pick(shop.fourthwall_window_s if shop else None, settings.fourthwall_window_s),
        margin=settings.quota_margin,
        margin_min_s=settings.quota_margin_min_s,
    )
    return heavy, general
