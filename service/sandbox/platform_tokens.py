"""Sandbox Fourthwall: the app token endpoint, ``POST /open-api/v1.0/platform/token``, written
from "Exchange Token" (docs.fourthwall.com/api-reference/platform/platform-token/exchange-token)
and the OAuth guide (docs.fourthwall.com/guides/oauth).

The page: an ``application/x-www-form-urlencoded`` body with ``client_id``, ``client_secret``,
``grant_type`` (``authorization_code`` | ``refresh_token``), ``redirect_uri`` and ``code`` (for a
code), ``refresh_token`` (for a refresh); "OAuth 2.0 token endpoint". The guide: the answer "will
contain an access_token, refresh_token, and other information". What the pages leave open is
modelled on RFC 6749, which the endpoint names: ``token_type``, ``expires_in`` (the sandbox's
tokens are short-lived on purpose), a **rotated** refresh token (the one used is spent: used
again, or revoked, it is refused), and errors as ``{"error", "error_description"}``: 400
``invalid_request`` / ``unsupported_grant_type`` / ``invalid_grant``, 401 ``invalid_client``.
An access token it issued is accepted as ``Authorization: Bearer`` on the Open API until it
expires; after that the Open API answers 401.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs

from service.sandbox.config import SandboxConfig

Answer = tuple[int, dict[str, Any], dict[str, str]]
TOKEN = "/open-api/v1.0/platform/token"  # noqa: S105 (a path)
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store"}  # RFC 6749 §5.1


def _oauth_error(status: int, error: str, description: str) -> Answer:
    return status, {"error": error, "error_description": description}, NO_STORE


class PlatformTokens:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.refresh: dict[str, str] = {}  # live refresh token → shop
        self.access: dict[str, tuple[str, float]] = {}  # access token → (shop, expires at)
        for shop in config.shops:
            if shop.app_refresh_token:
                self.refresh[shop.app_refresh_token] = shop.shop_id

    def exchange(self, content_type: str, body: bytes, now: float) -> tuple[str | None, Answer]:
        """(the shop the refresh was for, if known; the answer)."""
        if content_type.split(";")[0].strip().lower() != FORM:
            return None, _oauth_error(400, "invalid_request", f"Content-Type must be {FORM}")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        app = self.config.app
        if (
            app is None
            or form.get("client_id") != app.client_id
            or not secrets.compare_digest(form.get("client_secret", ""), app.client_secret)
        ):
            return None, _oauth_error(401, "invalid_client", "Client authentication failed")
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            return None, _oauth_error(400, "unsupported_grant_type", f"{grant_type!r}")
        if grant_type == "authorization_code":
            return None, _oauth_error(400, "invalid_grant", "Unknown authorization code")
        refresh = form.get("refresh_token")
        if not refresh:
            return None, _oauth_error(400, "invalid_request", "refresh_token is required")
        shop_id = self.refresh.pop(refresh, None)
        if shop_id is None:
            return None, _oauth_error(400, "invalid_grant", "Invalid, used or revoked token")
        return shop_id, (200, self._issue(shop_id, now, app.access_token_ttl_s), NO_STORE)

    def _issue(self, shop_id: str, now: float, ttl_s: float) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access[access] = (shop_id, now + ttl_s)
        self.refresh[refresh] = shop_id
        expires_in = max(1, round(ttl_s))
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
        }

    def shop_of(self, access_token: str, now: float) -> str | None:
        """The shop an unexpired access token was issued for."""
        issued = self.access.get(access_token)
        if issued is None or now >= issued[1]:
            return None
        return issued[0]

    def revoke(self, shop_id: str) -> None:
        """The shop uninstalled the app: its refresh and access tokens are refused."""
        self.refresh = {k: v for k, v in self.refresh.items() if v != shop_id}
        self.access = {k: v for k, v in self.access.items() if v[0] != shop_id}

    def install(self, shop_id: str, refresh_token: str) -> None:
        """The shop installs the app (again): its installation's refresh token is live."""
        self.refresh[refresh_token] = shop_id

    def expire(self, shop_id: str, now: float) -> None:
        """The shop's access tokens lapse now (their holders still think them valid)."""
        for token, (shop, _) in list(self.access.items()):
            if shop == shop_id:
                self.access[token] = (shop, now)

    def issued(self) -> int:
        return len(self.access)
