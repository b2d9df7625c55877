"""Fourthwall Open API: create customization and create product (camelCase on the wire).

Every field of the two seed endpoints is here. Request Structs forbid unknown fields so the
sandbox catches a client that sends what the API does not define; response Structs tolerate
them because Fourthwall may add fields.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from contracts.paths import segment

CUSTOMIZATIONS_PATH = "/open-api/v1.0/customizations"
PRODUCTS_PATH = "/open-api/v1.0/products"
PRODUCT_STATE_ENDPOINT = "/open-api/v1.0/products/{productId}/state"
# "Request a pre-signed upload URL" (20 / minute per shop) and "Save an uploaded image to the
# media library" (the general limit): an artwork the producer hosts becomes a Fourthwall image.
MEDIA_UPLOAD_URL_PATH = "/open-api/v1.0/media/upload-url"
MEDIA_IMAGES_PATH = "/open-api/v1.0/media/images"
# The pre-signed URL's own endpoint, as the calls are observed (the URL itself is a credential).
MEDIA_UPLOAD_ENDPOINT = "PUT {uploadUrl}"

ProductLifecycleState = Literal["PUBLIC", "HIDDEN"]


def product_state_path(product_id: str) -> str:
    """ "Update product (offer) lifecycle state": PUBLIC ⇄ HIDDEN, idempotent, general limit."""
    return f"{PRODUCTS_PATH}/{segment(product_id)}/state"


# Fourthwall's public examples spell product types in lower case (`design`, `digital`); the
# variant that builds a product from an existing customization is `customization`.
CUSTOMIZATION_PRODUCT_TYPE = "customization"
DESIGN_PRODUCT_TYPE = "design"
DIGITAL_PRODUCT_TYPE = "digital"

PlacementStrategy = Literal["AUTO", "FILL_ALL", "FULL_REGION", "PLACEMENT_ID"]


class _Request(
    msgspec.Struct,
    rename="camel",
    omit_defaults=True,
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
):
    pass


class _Response(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True, kw_only=True):
    pass


class ProductDesignRegionV1(_Request, frozen=True):
    region: str
    image_id: str
    placement_id: str | None = None
    placement_strategy: PlacementStrategy | None = None


class CreateCustomizationRequestV1(_Request, frozen=True):
    product_template_id: str
    regions: list[ProductDesignRegionV1] | None = None
    colors: list[str] | None = None
    sizes: list[str] | None = None


class DesignPipelineImageV1(_Response, frozen=True):
    url: str
    width: int
    height: int
    style: str
    color: str
    size: str | None = None
    region: str | None = None


class CreateCustomizationResponseV1(_Response, frozen=True):
    customization_id: str
    images: list[DesignPipelineImageV1]
    pipeline_id: str | None = None


class CreateDesignProductRequestV1(
    _Request, frozen=True, tag_field="type", tag=DESIGN_PRODUCT_TYPE
):
    product_template_id: str
    regions: list[ProductDesignRegionV1]
    name: str
    colors: list[str] | None = None
    sizes: list[str] | None = None
    description: str | None = None
    profit_margin: float | None = None
    publish_on_create: bool | None = None


class CreateDigitalProductRequestV1(
    _Request, frozen=True, tag_field="type", tag=DIGITAL_PRODUCT_TYPE
):
    name: str
    description: str
    price: float
    publish_on_create: bool | None = None


class CreateCustomizationProductRequestV1(
    _Request, frozen=True, tag_field="type", tag=CUSTOMIZATION_PRODUCT_TYPE
):
    customization_id: str
    name: str | None = None
    description: str | None = None
    profit_margin: float | None = None
    publish_on_create: bool | None = None


CreateProductRequestV1 = (
    CreateDesignProductRequestV1
    | CreateDigitalProductRequestV1
    | CreateCustomizationProductRequestV1
)


class CreateProductResponseV1(_Response, frozen=True):
    images: list[DesignPipelineImageV1]
    product_id: str | None = None
    customization_id: str | None = None


class UpdateProductStateRequestV1(_Request, frozen=True):
    state: ProductLifecycleState


class MediaUploadUrlRequestV1(_Request, frozen=True):
    """ "Request a pre-signed upload URL": what will be PUT there."""

    content_type: str
    file_name: str
    size: int


class MediaUploadUrlResponseV1(_Response, frozen=True):
    upload_url: str  # PUT the bytes here (no Authorization: the URL is the credential)
    file_url: str  # where they land: what "Save an uploaded image" takes


class SaveMediaImageRequestV1(_Request, frozen=True):
    file_url: str
    width: int
    height: int


class MediaImageV1(_Response, frozen=True):
    """ "Save an uploaded image to the media library" answers 201 with the image: its ``id`` is
    a region's ``imageId``."""

    id: str
    uri: str
    width: int
    height: int
    thumbnail: str | None = None
    preview: str | None = None


# A product (offer) has two axes ("Get product (offer) by id", OfferFullV1): ``state`` is its
# stock, ``access`` its visibility. "Update product (offer) lifecycle state" takes
# ``{"state": "PUBLIC" | "HIDDEN"}`` and changes ``access``; archiving is a DELETE.
AVAILABLE, SOLD_OUT = "AVAILABLE", "SOLD_OUT"
STOCK_STATES = (AVAILABLE, SOLD_OUT)
PUBLIC, HIDDEN, PRIVATE, ARCHIVED = "PUBLIC", "HIDDEN", "PRIVATE", "ARCHIVED"
ACCESS_TYPES = (PUBLIC, HIDDEN, PRIVATE, ARCHIVED)


def on_sale(access: str, stock: str | None) -> bool:
    """Whether shoppers can see and buy the product: public and not sold out (an unknown stock
    is taken as available, as a product is created)."""
    return access == PUBLIC and stock != SOLD_OUT


class ProductStateV1(_Response, frozen=True):
    type: str  # AVAILABLE | SOLD_OUT: stock


class ProductAccessV1(_Response, frozen=True):
    type: str  # PUBLIC | HIDDEN | PRIVATE | ARCHIVED: visibility


class ProductV1(_Response, frozen=True):
    """The product (offer) as "Update product (offer) lifecycle state" answers it (OfferFullV1):
    the fields we read."""

    id: str
    name: str = ""
    state: ProductStateV1 | None = None
    access: ProductAccessV1 | None = None


PRODUCT_TEMPLATE_ENDPOINT = "/open-api/v1.0/product-templates/{productId}"


def product_template_path(template_id: str) -> str:
    """ "Get product template": public, on the general limit (100 / 10 s per shop)."""
    return f"/open-api/v1.0/product-templates/{segment(template_id)}"


class TemplateColorV1(_Response, frozen=True):
    name: str


class TemplateSizeVariantV1(_Response, frozen=True):
    size: str
    available: bool | None = None


class TemplateColorVariantV1(_Response, frozen=True):
    color: TemplateColorV1
    size_variants: list[TemplateSizeVariantV1] = []
    available: bool | None = None


class TemplatePlacementV1(_Response, frozen=True):
    id: str
    name: str | None = None


class TemplateAreaV1(_Response, frozen=True):
    """A customizable area: ``regionId`` is what a design region's ``region`` must equal
    (case-sensitive), ``placements[].id`` what its ``placementId`` must be."""

    region_id: str | None = None
    name: str | None = None
    placements: list[TemplatePlacementV1] = []
    available: bool | None = None


class ProductTemplateV1(_Response, frozen=True):
    """ "Get product template" (``GET /open-api/v1.0/product-templates/{productId}``): the
    fields a design is checked against before a heavy call."""

    product_id: str
    name: str = ""
    color_variants: list[TemplateColorVariantV1] = []
    customizable_areas: list[TemplateAreaV1] = []


class ErrorBody(msgspec.Struct, frozen=True):
    """Fourthwall's error body: a ``code`` plus code-specific context fields."""

    code: str
    context: dict[str, Any]


def decode_error_body(body: bytes) -> ErrorBody | None:
    """The documented ``{"code": ..., <context>}`` body, or None when the body is not one."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("code"), str):
        return None
    code = raw.pop("code")
    return ErrorBody(code=code, context=raw)


# The error codes each endpoint documents, by HTTP status (seeds 000 and 001).
CUSTOMIZATION_ERRORS: dict[int, tuple[str, ...]] = {
    400: (
        "CUSTOMIZATION_ALREADY_USED_ERROR",
        "CUSTOMIZATION_FOR_REQUESTABLE_PRODUCT_ERROR",
        "CUSTOMIZATION_OPTION_DO_NOT_EXISTS",
        "CUSTOMIZATION_REGIONS_DUPLICATION",
        "CUSTOMIZATION_TOO_MANY_VARIANTS",
        "DESIGN_PIPELINE_BACKEND_RENDERING_NOT_SUPPORTED",
        "DESIGN_PIPELINE_INVALID_REGIONS",
        "DESIGNER_NOT_SUPPORTED_PRODUCT_ERROR",
        "MISSING_PRICE_FOR_SIZE_ERROR",
        "MISSING_VERSION_ERROR",
        "OFFER_INVALID_STATE_ERROR",
        "RENDERING_PRODUCT_NOT_SUPPORTED_ERROR",
        "UNTRUSTED_ASSET_SOURCE_ERROR",
        "VARIANT_MISSING_SIZE_ERROR",
    ),
    404: (
        "MEDIA_FILE_DO_NOT_EXISTS",
        "OFFER_BY_CUSTOMIZATION_ID_AND_SHOP_ID_NOT_FOUND",
        "OFFER_BY_CUSTOMIZATION_ID_NOT_FOUND_ERROR",
        "OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR",
        "PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND",
        "RENDERING_NOT_SCHEDULED_ERROR",
        "SHOP_TEAM_MEMBER_SHOP_NOT_FOUND_ERROR",
    ),
    406: ("PRICING_CALCULATION_NOT_SUPPORTED",),
    409: ("SQL_CONSTRAINTS_ERROR",),
    429: ("OPEN_API_TOO_MANY_REQUESTS",),
}

PRODUCT_ERRORS: dict[int, tuple[str, ...]] = {
    400: (
        "CUSTOMIZATION_ALREADY_USED_ERROR",
        "CUSTOMIZATION_FOR_REQUESTABLE_PRODUCT_ERROR",
        "CUSTOMIZATION_OPTION_DO_NOT_EXISTS",
        "CUSTOMIZATION_REGIONS_DUPLICATION",
        "CUSTOMIZATION_TOO_MANY_VARIANTS",
        "DESIGN_PIPELINE_BACKEND_RENDERING_NOT_SUPPORTED",
        "DESIGN_PIPELINE_INVALID_REGIONS",
        "DESIGNER_NOT_SUPPORTED_PRODUCT_ERROR",
        "DIGITAL_ITEMS_NOT_VALID_ERROR",
        "DIGITAL_ITEMS_SIZE_LIMIT_ERROR",
        "MISSING_VERSION_ERROR",
        "OFFER_CREATION_NOT_ALLOWED_ERROR",
        "RENDERING_PRODUCT_NOT_SUPPORTED_ERROR",
        "TOTAL_DIGITAL_STORAGE_LIMIT_ERROR",
        "UNTRUSTED_ASSET_SOURCE_ERROR",
    ),
    403: ("SAAS_OPERATION_NOT_ALLOWED_ERROR",),
    404: (
        "MEDIA_FILE_DO_NOT_EXISTS",
        "PRODUCT_CATALOG_PRODUCT_ID_NOT_FOUND",
        "RENDERING_NOT_SCHEDULED_ERROR",
    ),
    406: ("PRICING_CALCULATION_NOT_SUPPORTED",),
    409: ("OFFER_SLUG_DUPLICATION_ERROR", "SQL_CONSTRAINTS_ERROR"),
    429: ("OPEN_API_TOO_MANY_REQUESTS",),
}

TOO_MANY_REQUESTS_BODY = {
    "code": "OPEN_API_TOO_MANY_REQUESTS",
    "title": "Too many requests",
    "status": 429,
}
