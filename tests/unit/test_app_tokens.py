"""Fourthwall app credentials: the settings that hold them, when a token is refreshed, what a
refusal says (never a token), the sandbox's token endpoint as the pages and RFC 6749 read."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.sandbox.config import App, SandboxConfig, ShopAccount
from service.sandbox.platform_tokens import PlatformTokens
from service.settings import SettingsError, load_settings
from service.upstreams.app_tokens import _reason, refresh_after
from service.upstreams.credentials import AppGrant, FourthwallAuth, fourthwall_auth

APP_ENV = {"FOURTHWALL_APP_CLIENT_ID": "app_1", "FOURTHWALL_APP_CLIENT_SECRET": "s3cret"}


def _settings(tmp_path: Path, shop: str, **env: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "c.toml"
    config.write_text(f'[[shops]]\nshop_id = "a"\n{shop}\n')
    return load_settings({"CONFIG_FILE": str(config), **env})


def test_a_shop_with_an_app_refresh_token_uses_the_app(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 'fourthwall_app_refresh_token = "rt-1"', **APP_ENV)
    auth = fourthwall_auth(settings, "a")
    assert isinstance(auth, AppGrant) and auth.refresh_token.reveal() == "rt-1"
    assert "rt-1" not in repr(settings)
    # a shop without one keeps the environment's shop token
    other = fourthwall_auth(_settings(tmp_path, "", FOURTHWALL_TOKEN="tok", **APP_ENV), "b")
    assert isinstance(other, FourthwallAuth)


@pytest.mark.parametrize(
    ("shop", "env", "key"),
    [
        ('fourthwall_app_refresh_token = "rt"', {}, "FOURTHWALL_APP_CLIENT_ID"),
        ("", {"FOURTHWALL_APP_CLIENT_ID": "app_1"}, "FOURTHWALL_APP_CLIENT_SECRET"),
        ('fourthwall_app_refresh_token = "rt"\nfourthwall_token = "t"', APP_ENV, "CONFIG_FILE"),
        ('fourthwall_webhook_secret = "w"', {}, "CONFIG_FILE"),
    ],
)
def test_inconsistent_app_settings_are_refused(
    tmp_path: Path, shop: str, env: dict[str, str], key: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        _settings(tmp_path, shop, **env)
    assert refused.value.key == key


def test_a_fourthwall_shop_id_alone_is_enough_for_the_apps_webhooks(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, 'fourthwall_shop_id = "sh_1"', FOURTHWALL_APP_WEBHOOK_KEY="hmac-key"
    )
    assert settings.shops[0].fourthwall_shop_id == "sh_1"
    assert "hmac-key" not in repr(settings)


def test_a_token_is_due_a_margin_before_it_expires_and_never_after_half_its_life() -> None:
    assert refresh_after(1000.0, 3600.0, 60.0) == 1000.0 + 3540.0
    assert refresh_after(1000.0, 60.0, 60.0) == 1000.0 + 30.0  # short-lived: halfway
    assert refresh_after(1000.0, 10.0, 0.0) == 1010.0


def test_a_refusal_names_the_error_and_never_the_token() -> None:
    echoed = httpx.Response(
        400,
        json={"error": "invalid_grant", "error_description": "token rt-secret-1 of cs-9 was used"},
    )
    assert (
        _reason(echoed, "rt-secret-1", "cs-9")
        == "HTTP 400 invalid_grant: token *** of *** was used"
    )
    assert _reason(httpx.Response(401, text="nope"), "rt") == "HTTP 401"


def _sandbox() -> PlatformTokens:
    config = SandboxConfig(
        shops=[ShopAccount(shop_id="s", app_refresh_token="rt-0")],
        app=App(client_id="app_1", client_secret="cs", access_token_ttl_s=60),
    )
    return PlatformTokens(config)


FORM = "application/x-www-form-urlencoded"


def _refresh(tokens: PlatformTokens, refresh: str, secret: str = "cs", now: float = 0.0):  # type: ignore[no-untyped-def]
    body = (
        f"grant_type=refresh_token&refresh_token={refresh}&client_id=app_1&client_secret={secret}"
    )
    return tokens.exchange(FORM, body.encode(), now)


def test_the_sandbox_rotates_refresh_tokens_and_refuses_a_used_one() -> None:
    tokens = _sandbox()
    shop, (status, body, headers) = _refresh(tokens, "rt-0")
    assert (shop, status, body["token_type"], body["expires_in"]) == ("s", 200, "Bearer", 60)
    assert headers["Cache-Control"] == "no-store"
    assert tokens.shop_of(body["access_token"], 59.0) == "s"
    assert tokens.shop_of(body["access_token"], 60.0) is None  # expired
    _, (used, error, _) = _refresh(tokens, "rt-0")
    assert (used, error["error"]) == (400, "invalid_grant")
    _, (again, _, _) = _refresh(tokens, body["refresh_token"])
    assert again == 200


def test_the_sandbox_refuses_a_wrong_client_and_a_revoked_grant() -> None:
    tokens = _sandbox()
    _, (status, error, _) = _refresh(tokens, "rt-0", secret="wrong")
    assert (status, error["error"]) == (401, "invalid_client")
    tokens.revoke("s")
    _, (status, error, _) = _refresh(tokens, "rt-0")
    assert (status, error["error"]) == (400, "invalid_grant")
    _, (status, error, _) = tokens.exchange("application/json", b"{}", 0.0)
    assert (status, error["error"]) == (400, "invalid_request")
