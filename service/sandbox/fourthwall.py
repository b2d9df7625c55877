"""Sandbox Fourthwall: customizations and products, with the documented errors and limits.

A product is kept as its pages describe it (OfferFullV1): ``access`` is its visibility (PUBLIC,
HIDDEN, PRIVATE, ARCHIVED), ``stock`` its ``state.type`` (AVAILABLE, SOLD_OUT)."""

from __future__ import annotations

import base64
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from service.sandbox import shapes
from service.sandbox.config import SandboxConfig, Template
from service.sandbox.platform_tokens import PlatformTokens

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


@dataclass(frozen=True)
class Changed:
    """A product a shop owner changed, and Fourthwall's webhook event for it."""

    shop_id: str
    envelope: dict[str, Any]


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def error(status: int, code: str, **context: Any) -> Answer:
    return status, {"code": code, **context}, {}


class Limiter:
    """Sliding windows per shop, as strict as the documented limits read: no interval of
    ``window`` seconds holds more than ``limit`` accepted calls."""

    def __init__(self, limits: Callable[[], tuple[int, float]]) -> None:
        self._limits = limits  # read on every call, so a test can change them while running
        self._calls: dict[str, deque[float]] = {}

    def admit(self, shop_id: str, now: float) -> float | None:
        """Record a call and return None, or return the seconds until a slot frees."""
        limit, window_s = self._limits()
        calls = self._calls.setdefault(shop_id, deque())
        while calls and calls[0] <= now - window_s:
            calls.popleft()
        if len(calls) >= limit:
            return calls[0] + window_s - now
        calls.append(now)
        return None


class FourthwallSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.heavy = Limiter(lambda: (config.heavy_calls, config.heavy_window_s))
        self.general = Limiter(lambda: (config.calls, config.window_s))
        self.customizations: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.tokens = PlatformTokens(config)

    def authenticate(self, header: str | None, now: float | None = None) -> str | None:
        """The shop the ``Authorization`` header belongs to (a shop's API user, its token, or
        an unexpired access token of the app it installed), or None."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            shop_id = self.tokens.shop_of(value, time.monotonic() if now is None else now)
            if shop_id is not None:
                return shop_id
        for shop in self.config.shops:
            if scheme == "Bearer" and shop.token and secrets.compare_digest(value, shop.token):
                return shop.shop_id
            if scheme == "Basic" and shop.username and shop.password:
                expected = base64.b64encode(f"{shop.username}:{shop.password}".encode()).decode()
                if secrets.compare_digest(value, expected):
                    return shop.shop_id
        return None

    def rate_limit(self, shop_id: str, now: float, heavy: bool = True) -> Answer | None:
        """The general limit for every call; the heavy one too for a heavy call."""
        wait = self.general.admit(shop_id, now)
        if wait is None and heavy:
            wait = self.heavy.admit(shop_id, now)
        if wait is None:
            return None
        headers = (
            {"Retry-After": str(max(1, round(wait + 0.5)))} if self.config.send_retry_after else {}
        )
        return 429, dict(shapes.TOO_MANY_REQUESTS), headers

    def _owned(self, shop_id: str, product_id: str) -> dict[str, Any] | Answer:
        product = self.products.get(product_id)
        if product is None or product["shop_id"] != shop_id:
            # the documented offer-not-found error ("Get product (offer) by id")
            return error(
                404, "OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR", shopId=shop_id, offerId=product_id
            )
        return product

    def get_product(self, shop_id: str, product_id: str) -> Answer:
        """ "Get product (offer) by id": the product, archived ones too."""
        product = self._owned(shop_id, product_id)
        if isinstance(product, tuple):
            return product
        return 200, offer(product_id, product), {}

    def set_state(self, shop_id: str, product_id: str, body: bytes) -> Answer:
        """PUBLIC ⇄ HIDDEN (the product's ``access``; its stock is kept); idempotent; answers
        the product. ``ARCHIVED`` is not reachable here and an archived product cannot leave
        it: not found, as another shop's product is."""
        try:
            request = msgspec.json.decode(body, type=shapes.NewState)
        except msgspec.MsgspecError as exc:
            return error(400, "INVALID_REQUEST_BODY", detail=str(exc))
        product = self._owned(shop_id, product_id)
        if isinstance(product, tuple):
            return product
        if product["access"] == "ARCHIVED":
            return error(
                404, "OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR", shopId=shop_id, offerId=product_id
            )
        if product["access"] != request.state:
            product["access"] = request.state
            product["updated_at"] = _now()
        return 200, offer(product_id, product), {}

    def change(self, product_id: str, change: dict[str, Any]) -> Changed | Answer:
        """A shop owner's change in the dashboard (``access`` PUBLIC/HIDDEN/PRIVATE/ARCHIVED,
        ``stock`` AVAILABLE/SOLD_OUT, ``name``, ``image_url``): the product changed, and the
        ``PRODUCT_UPDATED`` webhook event for it, the product under ``data.product.results`` as
        the event's page documents it."""
        product = self.products.get(product_id)
        if product is None:
            return error(404, "OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR", offerId=product_id)
        access = change.get("access", product["access"])
        stock = change.get("stock", product["stock"])
        if access not in ACCESS or stock not in STOCK:
            return error(400, "INVALID_REQUEST_BODY", detail=f"access {access!r}, stock {stock!r}")
        product.update(access=access, stock=stock, name=change.get("name", product["name"]))
        if change.get("image_url"):
            product["images"] = [{"url": change["image_url"], "width": 800, "height": 800}]
        product["updated_at"] = _now()
        account = next(s for s in self.config.shops if s.shop_id == product["shop_id"])
        envelope = {
            "testMode": False,
            "id": _id("weve"),
            "webhookId": "wcon_sandbox",
            "shopId": account.fourthwall_shop_id or account.shop_id,
            "type": "PRODUCT_UPDATED",
            "apiVersion": "V1",
            "createdAt": product["updated_at"],
            "data": {"product": {"results": [offer(product_id, product)]}},
        }
        return Changed(product["shop_id"], envelope)

    def get_template(self, template_id: str) -> Answer:
        """ "Get product template": the documented shape, from the sandbox's catalogue."""
        template = self._template(template_id)
        if isinstance(template, tuple):
            return template
        sizes = [
            {"variantId": f"var_{template_id}_{size}", "size": size, "available": True}
            for size in template.sizes
        ]
        price = {"amount": 12.5, "currency": "USD"}
        return (
            200,
            {
                "productId": template_id,
                "slug": template_id.lower().replace("_", "-"),
                "name": template.name,
                "category": "apparel",
                "brand": "Sandbox",
                "productionMethod": "DTG",
                "supportsBackendRendering": True,
                "description": "",
                "minimumOrdersNumber": 1,
                "priceFrom": price,
                "priceTo": price,
                "sizeGuide": {"url": "", "content": ""},
                "colorVariants": [
                    {
                        "color": {"name": color},
                        "sizeVariants": sizes,
                        "status": "AVAILABLE",
                        "available": True,
                    }
                    for color in template.colors
                ],
                "customizableAreas": [
                    {
                        "name": region.replace("_", " ").title(),
                        "type": "print",
                        "available": True,
                        "placements": [
                            {"id": p, "name": p.replace("_", " ").title()}
                            for p in template.placements.get(region, [])
                        ],
                        "regionId": region,
                    }
                    for region in template.regions
                ],
            },
            {},
        )

    def _template(self, template_id: str) -> Template | Answer:
        template = self.config.templates.get(template_id)
        if template is None:
            return error(404, "PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND", id=template_id)
        return template

    def _render(
        self,
        template: Template,
        regions: list[shapes.Region],
        colors: list[str] | None,
        sizes: list[str] | None,
        owner: str,
        template_id: str,
    ) -> list[dict[str, Any]] | Answer:
        names = [r.region for r in regions]
        if len(names) != len(set(names)):
            return error(400, "CUSTOMIZATION_REGIONS_DUPLICATION", regions=names)
        invalid = sorted(set(names) - set(template.regions))
        placement = [
            r.region
            for r in regions
            if r.placement_strategy == "PLACEMENT_ID"
            and (
                not r.placement_id
                or (
                    r.region in template.placements
                    and r.placement_id not in template.placements[r.region]
                )
            )
        ]
        if invalid or placement:
            return error(
                400,
                "DESIGN_PIPELINE_INVALID_REGIONS",
                invalidRegions=invalid or placement,
                validRegions=template.regions,
            )
        for region in regions:
            if region.image_id.startswith("img_missing") or not region.image_id.startswith("img_"):
                return error(
                    404, "MEDIA_FILE_DO_NOT_EXISTS", uri=f"media://images/{region.image_id}"
                )
        chosen_colors = [c for c in (colors or template.colors) if c in template.colors]
        if not chosen_colors:
            return error(
                400,
                "CUSTOMIZATION_OPTION_DO_NOT_EXISTS",
                type="color",
                name=",".join(colors or []),
                productId=template_id,
            )
        if sizes is not None and template.sizes and not [s for s in sizes if s in template.sizes]:
            return error(
                400,
                "CUSTOMIZATION_OPTION_DO_NOT_EXISTS",
                type="size",
                name=",".join(sizes),
                productId=template_id,
            )
        return [
            {
                "url": f"https://cdn.sandbox.invalid/{owner}/{r.region}/{color}.png",
                "width": 1200,
                "height": 1200,
                "style": "mockup",
                "color": color,
                "region": r.region,
            }
            for r in regions
            for color in chosen_colors
        ]

    def create_customization(self, shop_id: str, body: bytes) -> Answer:
        try:
            request = msgspec.json.decode(body, type=shapes.NewCustomization)
        except msgspec.MsgspecError as exc:
            return error(400, "INVALID_REQUEST_BODY", detail=str(exc))
        template = self._template(request.product_template_id)
        if isinstance(template, tuple):
            return template
        customization_id = _id("cst")
        regions = request.regions or []
        images = self._render(
            template,
            regions,
            request.colors,
            request.sizes,
            customization_id,
            request.product_template_id,
        )
        if isinstance(images, tuple):
            return images
        self.customizations[customization_id] = {
            "shop_id": shop_id,
            "template_id": request.product_template_id,
            "regions": len(regions),
            "image_ids": [r.image_id for r in regions],
            "images": images,
            "product_id": None,
        }
        pipeline_id = _id("dpl") if regions else None
        return (
            201,
            {"customizationId": customization_id, "pipelineId": pipeline_id, "images": images},
            {},
        )

    def create_product(self, shop_id: str, body: bytes) -> Answer:
        try:
            request = msgspec.json.decode(body, type=shapes.NewProduct)
        except msgspec.MsgspecError as exc:
            return error(400, "INVALID_REQUEST_BODY", detail=str(exc))
        if isinstance(request, shapes.DigitalProduct):
            product_id = _id("prd")
            self.products[product_id] = {
                "shop_id": shop_id,
                "type": "digital",
                "name": request.name,
                "customization_id": None,
                **_created(request.publish_on_create),
            }
            return 201, {"productId": product_id, "images": []}, {}
        if isinstance(request, shapes.DesignProduct):
            template = self._template(request.product_template_id)
            if isinstance(template, tuple):
                return template
            product_id = _id("prd")
            images = self._render(
                template,
                request.regions,
                request.colors,
                request.sizes,
                product_id,
                request.product_template_id,
            )
            if isinstance(images, tuple):
                return images
            self.products[product_id] = {
                "shop_id": shop_id,
                "type": "design",
                "name": request.name,
                "customization_id": None,
                **_created(request.publish_on_create),
            }
            return 201, {"productId": product_id, "images": images}, {}
        sketch = self.customizations.get(request.customization_id)
        if sketch is None or sketch["shop_id"] != shop_id:
            return error(400, "MISSING_VERSION_ERROR", customizationId=request.customization_id)
        if sketch["product_id"] is not None:
            return error(
                400, "CUSTOMIZATION_ALREADY_USED_ERROR", customizationId=request.customization_id
            )
        if not sketch["regions"]:
            return error(
                404, "RENDERING_NOT_SCHEDULED_ERROR", customizationId=request.customization_id
            )
        product_id = _id("prd")
        sketch["product_id"] = product_id
        name = request.name or self.config.templates[sketch["template_id"]].name
        self.products[product_id] = {
            "shop_id": shop_id,
            "type": "customization",
            "name": name,
            "customization_id": request.customization_id,
            **_created(request.publish_on_create),
            "images": [_image(i) for i in sketch["images"]],
        }
        return (
            201,
            {
                "productId": product_id,
                "customizationId": request.customization_id,
                "images": sketch["images"],
            },
            {},
        )


ACCESS = ("PUBLIC", "HIDDEN", "PRIVATE", "ARCHIVED")
STOCK = ("AVAILABLE", "SOLD_OUT")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _created(publish_on_create: bool | None) -> dict[str, Any]:
    """A product is created hidden unless ``publishOnCreate`` is true, in stock."""
    now = _now()
    return {
        "access": "PUBLIC" if publish_on_create else "HIDDEN",
        "stock": "AVAILABLE",
        "images": [],
        "created_at": now,
        "updated_at": now,
    }


def _image(rendered: dict[str, Any]) -> dict[str, Any]:
    return {k: rendered[k] for k in ("url", "width", "height")}


def offer(product_id: str, product: dict[str, Any]) -> dict[str, Any]:
    """The product as Fourthwall answers it (OfferFullV1, the fields the sandbox keeps)."""
    return {
        "id": product_id,
        "name": product["name"],
        "slug": product_id.lower().replace("_", "-"),
        "description": product.get("description") or "",
        "type": "STANDARD",
        "state": {"type": product["stock"]},
        "access": {"type": product["access"]},
        "images": [
            {"id": f"{product_id}-{n}", "transformedUrl": image["url"], **image}
            for n, image in enumerate(product.get("images", []))
        ],
        "variants": [],
        "createdAt": product["created_at"],
        "updatedAt": product["updated_at"],
    }
