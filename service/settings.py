"""Configuration: environment variables and an optional TOML file, decoded once at start-up.

A missing or bad value stops start-up with a ``SettingsError`` naming the key. Secrets are
``Secret`` values that never print themselves.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from consumers.pin_rules import PinRules
from service.secrets import Secret, dec_hook

CONSUMERS = ("design-approved", "product-created", "design-withdrawn", "fourthwall-changes")

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
Url = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*://")]
# A host name, optionally with a port, or "*." and a domain for any of its subdomains.
HostPattern = Annotated[
    str, msgspec.Meta(pattern=r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
]


class SettingsError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration {key}: {problem}")
        self.key = key


class ShopConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``[[shops]]`` table of CONFIG_FILE: one shop's credentials and overrides."""

    shop_id: Annotated[str, msgspec.Meta(min_length=1)]
    fourthwall_username: str | None = None
    fourthwall_password: Secret | None = None
    fourthwall_token: Secret | None = None
    luigisbox_tracker_id: str | None = None
    luigisbox_private_key: Secret | None = None
    item_identity_template: str | None = None
    # The product's page on the shop's site, sent to Luigi's Box as ``web_url`` (the identity
    # template's placeholders), e.g. "https://shop.example/products/{product_id}".
    product_url_template: str | None = None
    # A newer revision's product retires the older revisions' products (hidden, unpinned, out
    # of the catalogue, product.withdrawn reason superseded); false keeps every revision's.
    supersede_revisions: bool = True
    # Fourthwall's webhooks for this shop (POST /webhooks/fourthwall): its Fourthwall shop id
    # ("sh_…", the envelope's shopId) and the secret Fourthwall signs each delivery with.
    # With FOURTHWALL_APP_WEBHOOK_KEY set, fourthwall_shop_id alone is enough: the app's webhooks
    # (X-Fourthwall-Hmac-Apps-SHA256) are signed with the app's key, not a shop's secret.
    fourthwall_shop_id: str | None = None
    fourthwall_webhook_secret: Secret | None = None
    # The shop installed our Fourthwall app (OAuth): the refresh token its installation gave.
    # Access tokens are refreshed from it (FOURTHWALL_APP_CLIENT_ID / _SECRET) and kept, with
    # the refresh token as Fourthwall rotates it, in the ledger's database (service/upstreams/
    # app_tokens.py). Instead of fourthwall_token or fourthwall_username/password.
    fourthwall_app_refresh_token: Secret | None = None
    fourthwall_heavy_calls: PositiveInt | None = None
    fourthwall_heavy_window_s: PositiveFloat | None = None
    fourthwall_calls: PositiveInt | None = None
    fourthwall_window_s: PositiveFloat | None = None

    def __post_init__(self) -> None:
        basic = self.fourthwall_username is not None or self.fourthwall_password is not None
        if basic and (self.fourthwall_username is None or self.fourthwall_password is None):
            raise ValueError("fourthwall_username and fourthwall_password go together")
        if (self.luigisbox_tracker_id is None) != (self.luigisbox_private_key is None):
            raise ValueError("luigisbox_tracker_id and luigisbox_private_key go together")
        if self.fourthwall_webhook_secret is not None and self.fourthwall_shop_id is None:
            raise ValueError("fourthwall_webhook_secret needs fourthwall_shop_id")
        if self.fourthwall_app_refresh_token is not None and (
            basic or self.fourthwall_token is not None
        ):
            raise ValueError(
                "fourthwall_app_refresh_token replaces fourthwall_token and "
                "fourthwall_username/password: set one of them"
            )


class ProducerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``[[producers]]`` table: a webhook producer and its active signing secrets (several, so a
    secret can be rotated without downtime)."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    secrets: list[Secret]


class FileConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    shops: list[ShopConfig] = []
    pins: PinRules = PinRules()
    producers: list[ProducerConfig] = []


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    amqp_url: Secret = Secret("amqp://guest:guest@localhost:5672/")
    database_url: str = "sqlite:///merch-pipeline.sqlite3"
    fourthwall_api_url: Url = "https://api.fourthwall.com"
    fourthwall_username: str | None = None
    fourthwall_password: Secret | None = None
    fourthwall_token: Secret | None = None
    # A Fourthwall app (OAuth, docs.fourthwall.com/guides/oauth): its client id and secret, for
    # the shops whose [[shops]] table holds fourthwall_app_refresh_token; its HMAC key, which
    # signs the app's webhooks (X-Fourthwall-Hmac-Apps-SHA256).
    fourthwall_app_client_id: str | None = None
    fourthwall_app_client_secret: Secret | None = None
    fourthwall_app_webhook_key: Secret | None = None
    # An access token is refreshed this long before it expires (at the latest halfway through
    # its life), so a call never starts with a token about to lapse.
    fourthwall_app_refresh_margin_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    luigisbox_api_url: Url = "https://live.luigisbox.com"
    luigisbox_tracker_id: str | None = None
    luigisbox_private_key: Secret | None = None
    admin_token: Secret | None = None
    http_host: str = "0.0.0.0"
    http_port: Port = 8080
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    config_file: str | None = None
    prefetch: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    max_attempts: PositiveInt = 5
    retry_delays_s: tuple[PositiveFloat, ...] = (5.0, 30.0, 120.0, 600.0)
    retry_jitter: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.2
    http_timeout_s: PositiveFloat = 30.0
    # Longer than one upstream call, so SIGTERM rarely cuts a call off mid-flight.
    shutdown_grace_s: PositiveFloat = 40.0
    max_message_bytes: PositiveInt = 256 * 1024
    lease_s: PositiveFloat = 120.0
    # How long a statement waits for a database that does not answer (SQLite's busy timeout,
    # PostgreSQL's connect and pool timeouts) before the ledger counts as away.
    ledger_timeout_s: PositiveFloat = 5.0
    ledger_probe_interval_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    # Fourthwall's per-shop limits (seeds 000/001); CONFIG_FILE [[shops]] may override them.
    fourthwall_heavy_calls: PositiveInt = 5
    fourthwall_heavy_window_s: PositiveFloat = 60.0
    fourthwall_calls: PositiveInt = 100
    fourthwall_window_s: PositiveFloat = 10.0
    quota_enabled: bool = True
    # The window is widened by max(margin x window, margin_min_s): room for the jitter between
    # our clock and the moment Fourthwall counts the call.
    quota_margin: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.02
    quota_margin_min_s: Annotated[float, msgspec.Meta(ge=0)] = 0.05
    quota_max_hold_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    # How often a replica looks for parked designs other replicas parked (its own wake it).
    parking_poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    migrate_on_start: bool = True
    failpoints: str = ""  # crash tests only, see service/failpoints.py
    merch_pipeline_test_mode: bool = False  # allows FAILPOINTS; never set in a deployment
    # Webhook ingress (off unless a secret is configured here or in [[producers]]).
    webhook_secrets: tuple[Secret, ...] = ()
    webhook_tolerance_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 300.0
    webhook_max_batch: PositiveInt = 100
    webhook_rate_per_minute: PositiveInt = 600
    # The operator console at /admin/ui/ (on with ADMIN_TOKEN): its session cookie is Secure
    # also over plain http with this (the chart sets it: TLS ends at the ingress).
    console_cookie_secure: bool = False
    console_session_ttl_s: Annotated[float, msgspec.Meta(ge=60, le=7 * 86400)] = 8 * 3600.0
    console_login_attempts_per_minute: PositiveInt = 5
    # Artwork a design names by URL: fetched only from these hosts ("cdn.example.com", or
    # "*.example.com" for its subdomains); none set, no artwork is fetched by URL.
    artwork_hosts: tuple[HostPattern, ...] = ()
    artwork_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=200 * 1024 * 1024)] = (
        50 * 1024 * 1024
    )
    shops: tuple[ShopConfig, ...] = ()
    pins: PinRules = PinRules()
    producers: tuple[ProducerConfig, ...] = ()

    def shop(self, shop_id: str) -> ShopConfig | None:
        return next((s for s in self.shops if s.shop_id == shop_id), None)


_ENV_KEYS = [f for f in Settings.__struct_fields__ if f not in ("shops", "pins", "producers")]
_PIN_ENV = {
    "PIN_MODEL": "model",
    "PIN_POSITION": "position",
    "PIN_TAGS": "tags",
    "PIN_WINDOW_DAYS": "all_window_days",
    "ITEM_IDENTITY_TEMPLATE": "item_identity_template",
}
_LIST_KEYS = {"retry_delays_s", "webhook_secrets", "tags", "artwork_hosts"}
# Settings an earlier version read and this one ignores, with what replaced them.
RETIRED = {
    "DEFER_DELAYS_S": "designs waiting for their quota are parked in the ledger (PARKING_POLL_S)"
}


def retired_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The retired settings still set in ``environ``, each with what replaced it."""
    env = os.environ if environ is None else environ
    return {key: why for key, why in RETIRED.items() if env.get(key)}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _key_of(message: str, default: str) -> str:
    match = re.search(r"`\$\.([a-z_]+)", message)
    return match.group(1).upper() if match else default


def _load_file(path: str) -> FileConfig:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError("CONFIG_FILE", f"file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError("CONFIG_FILE", f"{path!r} is not valid TOML: {exc}") from None
    try:
        config = msgspec.convert(raw, FileConfig, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise SettingsError("CONFIG_FILE", f"{path}: {exc}") from None
    seen = [s.shop_id for s in config.shops]
    if len(seen) != len(set(seen)):
        raise SettingsError("CONFIG_FILE", f"{path}: a shop_id appears more than once")
    return config


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Decode the settings from ``environ`` (default ``os.environ``) and CONFIG_FILE."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for key in _ENV_KEYS:
        value = env.get(key.upper())
        if value is None or value == "":
            continue
        raw[key] = _split(value) if key in _LIST_KEYS else value
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        key = _key_of(str(exc), "settings")
        raise SettingsError(key, str(exc).split(" - at ")[0]) from None

    file = _load_file(settings.config_file) if settings.config_file else FileConfig()
    pins_raw: dict[str, Any] = msgspec.to_builtins(file.pins)
    for env_key, field in _PIN_ENV.items():
        value = env.get(env_key)
        if value:
            pins_raw[field] = _split(value) if field in _LIST_KEYS else value
    try:
        pins = msgspec.convert(pins_raw, PinRules, strict=False)
    except msgspec.ValidationError as exc:
        field = _key_of(str(exc), "pins")
        env_key = next((k for k, f in _PIN_ENV.items() if f.upper() == field), field)
        raise SettingsError(env_key, str(exc).split(" - at ")[0]) from None
    settings = msgspec.structs.replace(
        settings, shops=tuple(file.shops), pins=pins, producers=tuple(file.producers)
    )
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    if (settings.fourthwall_username is None) != (settings.fourthwall_password is None):
        raise SettingsError(
            "FOURTHWALL_PASSWORD" if settings.fourthwall_username else "FOURTHWALL_USERNAME",
            "FOURTHWALL_USERNAME and FOURTHWALL_PASSWORD must be set together",
        )
    if (settings.luigisbox_tracker_id is None) != (settings.luigisbox_private_key is None):
        raise SettingsError(
            "LUIGISBOX_PRIVATE_KEY" if settings.luigisbox_tracker_id else "LUIGISBOX_TRACKER_ID",
            "LUIGISBOX_TRACKER_ID and LUIGISBOX_PRIVATE_KEY must be set together",
        )
    _check_app(settings)
    if settings.failpoints and not settings.merch_pipeline_test_mode:
        raise SettingsError(
            "FAILPOINTS",
            "failpoints kill the process on purpose and are a crash-test tool: they are refused "
            "unless MERCH_PIPELINE_TEST_MODE=1 is set too",
        )
    if not settings.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise SettingsError("DATABASE_URL", "must start with sqlite:/// or postgresql://")
    _check_template("ITEM_IDENTITY_TEMPLATE", settings.pins.item_identity_template)
    for shop in settings.shops:
        for key in ("item_identity_template", "product_url_template"):
            template = getattr(shop, key)
            if template is not None:
                _check_template(f"shops[{shop.shop_id}].{key}", template)


def _check_app(settings: Settings) -> None:
    client_id, secret = settings.fourthwall_app_client_id, settings.fourthwall_app_client_secret
    if (client_id is None) != (secret is None):
        raise SettingsError(
            "FOURTHWALL_APP_CLIENT_SECRET"
            if settings.fourthwall_app_client_id
            else "FOURTHWALL_APP_CLIENT_ID",
            "FOURTHWALL_APP_CLIENT_ID and FOURTHWALL_APP_CLIENT_SECRET must be set together",
        )
    for shop in settings.shops:
        if shop.fourthwall_app_refresh_token and settings.fourthwall_app_client_id is None:
            raise SettingsError(
                "FOURTHWALL_APP_CLIENT_ID",
                f"shop {shop.shop_id!r} has fourthwall_app_refresh_token: the app's "
                "FOURTHWALL_APP_CLIENT_ID and FOURTHWALL_APP_CLIENT_SECRET are needed to use it",
            )


def _check_template(name: str, template: str) -> None:
    try:
        template.format(product_id="p", shop_id="s", design_id="d", customization_id="c")
    except (KeyError, IndexError, ValueError) as exc:
        raise SettingsError(name, f"unknown placeholder {exc}") from None
