"""The sandbox's configuration: accounts, catalogue, limits and faults."""

from __future__ import annotations

from pathlib import Path

import msgspec


class Template(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    regions: list[str]
    colors: list[str]
    sizes: list[str] = []
    placements: dict[str, list[str]] = {}  # region → its placements' ids


DEFAULT_TEMPLATES = {
    "pro_tee": Template(
        name="Classic Tee",
        regions=["front", "back"],
        colors=["Black", "White", "Navy"],
        sizes=["S", "M", "L", "XL"],
        placements={"front": ["chest_left", "center"], "back": ["center"]},
    ),
    "pro_hoodie": Template(
        name="Heavy Hoodie",
        regions=["front", "back", "sleeve_left"],
        colors=["Black", "Grey"],
        sizes=["S", "M", "L", "XL", "XXL"],
    ),
    "pro_mug": Template(name="Ceramic Mug", regions=["wrap"], colors=["White"]),
}


class ShopAccount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    shop_id: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    # Fourthwall's own id of the shop ("sh_…") and the secret its webhooks are signed with
    fourthwall_shop_id: str | None = None
    webhook_secret: str | None = None
    # The shop installed the sandbox's app: the refresh token its installation gave
    app_refresh_token: str | None = None


class App(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A Fourthwall app ("Apps - Getting started", the OAuth guide): its client id and secret,
    the HMAC key its webhooks are signed with, and how long an access token it is given lives
    (the pages name no lifetime; ``expires_in`` says it)."""

    client_id: str
    client_secret: str
    hmac_key: str | None = None
    access_token_ttl_s: float = 3600.0


class Tracker(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tracker_id: str
    private_key: str


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Injected trouble. ``error_rate_5xx`` and ``rate_429`` are fractions of calls."""

    latency_ms: float = 0.0
    error_rate_5xx: float = 0.0
    rate_429: float = 0.0
    lost_answer_rate: float = 0.0  # the call takes effect, the answer is a 504
    seed: int | None = None
    # Only these endpoints (as recorded: "/open-api/v1.0/products", ...); empty: every one.
    endpoints: list[str] = []


class SandboxConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    shops: list[ShopAccount] = []
    trackers: list[Tracker] = []
    templates: dict[str, Template] = msgspec.field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    heavy_calls: int = 5
    heavy_window_s: float = 60.0
    calls: int = 100
    window_s: float = 10.0
    upload_calls: int = 20  # "Request a pre-signed upload URL": 20 a minute per shop
    upload_window_s: float = 60.0
    send_retry_after: bool = True
    date_skew_s: float = 5.0  # Luigi's Box: "We tolerate ±5 second inaccuracies"
    faults: Faults = msgspec.field(default_factory=Faults)
    webhook_url: str | None = None  # where the shops' webhooks are delivered (POST)
    app: App | None = None


def load_config(path: str | None) -> SandboxConfig:
    if path is None:
        return SandboxConfig()
    return msgspec.json.decode(Path(path).read_bytes(), type=SandboxConfig)
