"""Which credentials a shop uses: its ``[[shops]]`` table first, then the environment's."""

from __future__ import annotations

from dataclasses import dataclass

from service.secrets import Secret
from service.settings import Settings


@dataclass(frozen=True)
class FourthwallAuth:
    username: str | None
    password: Secret | None
    token: Secret | None

    def header(self) -> str:
        import base64

        if self.token:
            return f"Bearer {self.token.reveal()}"
        assert self.username is not None and self.password is not None
        pair = f"{self.username}:{self.password.reveal()}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"


@dataclass(frozen=True)
class AppGrant:
    """The shop installed our Fourthwall app: its access tokens come from this refresh token
    (the one its installation gave; the ledger keeps the ones Fourthwall rotates it to)."""

    shop_id: str
    refresh_token: Secret


@dataclass(frozen=True)
class LuigisBoxAccount:
    tracker_id: str
    private_key: Secret


def fourthwall_auth(settings: Settings, shop_id: str) -> FourthwallAuth | AppGrant | None:
    shop = settings.shop(shop_id)
    if shop and shop.fourthwall_app_refresh_token:
        return AppGrant(shop_id, shop.fourthwall_app_refresh_token)
    if shop and (shop.fourthwall_token or shop.fourthwall_username):
        return FourthwallAuth(
            shop.fourthwall_username, shop.fourthwall_password, shop.fourthwall_token
        )
    if settings.fourthwall_token or settings.fourthwall_username:
        return FourthwallAuth(
            settings.fourthwall_username, settings.fourthwall_password, settings.fourthwall_token
        )
    return None


def luigisbox_account(settings: Settings, shop_id: str) -> LuigisBoxAccount | None:
    shop = settings.shop(shop_id)
    if shop and shop.luigisbox_tracker_id and shop.luigisbox_private_key:
        return LuigisBoxAccount(shop.luigisbox_tracker_id, shop.luigisbox_private_key)
    if settings.luigisbox_tracker_id and settings.luigisbox_private_key:
        return LuigisBoxAccount(settings.luigisbox_tracker_id, settings.luigisbox_private_key)
    return None


def identity_templates(settings: Settings) -> dict[str, str]:
    return {s.shop_id: s.item_identity_template for s in settings.shops if s.item_identity_template}


def product_url_templates(settings: Settings) -> dict[str, str]:
    return {s.shop_id: s.product_url_template for s in settings.shops if s.product_url_template}
