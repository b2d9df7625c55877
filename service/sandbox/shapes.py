"""Fourthwall's request bodies and paths as its pages document them, written here for the
sandbox alone (the clients' own Structs are in ``contracts/``; sharing them would let one misread
pass twice).

- "Create a new customization", ``POST /open-api/v1.0/customizations``
  (docs.fourthwall.com/api-reference/platform/customization/create-customization;
  shared/seeds/000): ``productTemplateId`` (required), ``regions`` [{``region``, ``imageId``
  (both required), ``placementId``, ``placementStrategy`` AUTO | FILL_ALL | FULL_REGION |
  PLACEMENT_ID}], ``colors``, ``sizes``.
- "Create a product", ``POST /open-api/v1.0/products`` (…/products-(offers)/create-product;
  shared/seeds/001, 002): one of three bodies told apart by ``type`` (the page names the variants
  CreateDesignProductRequestV1, CreateDigitalProductRequestV1 and
  CreateCustomizationProductRequestV1 but not their ``type`` values; Fourthwall's public examples
  spell them ``design``, ``digital``, ``customization``).
- "Update product (offer) lifecycle state", ``PUT /open-api/v1.0/products/{productId}/state``:
  ``{"state": "PUBLIC" | "HIDDEN"}``, answers the product (OfferFullV1).
- "Get product template", ``GET /open-api/v1.0/product-templates/{productId}``
  (…/product-templates/get-product-template): public (no authentication needed);
  ``customizableAreas[]`` (``regionId``, ``placements[].id``, ``available``), ``colorVariants[]``
  (``color.name``, ``sizeVariants[].size``, ``available``).
- "Request a pre-signed upload URL", ``POST /open-api/v1.0/media/upload-url``
  (…/media-library/request-media-upload-url; "Rate limit: 20 requests / minute per shop"):
  ``contentType``, ``fileName``, ``size`` (Fourthwall's public examples, `examples/agency/lib/
  fourthwall.ts`); answers ``uploadUrl`` (PUT the bytes there: "PUT the image bytes directly to
  the uploadUrl", with the declared ``Content-Type`` and ``x-goog-content-length-range: 0,<size>``,
  which the URL is signed for) and ``fileUrl``.
- "Save an uploaded image to the media library", ``POST /open-api/v1.0/media/images``
  (…/media-library/save-media-image; the general limit): ``fileUrl``, ``width``, ``height`` (all
  required); answers 201 ``id``, ``uri``, ``width``, ``height``, ``thumbnail``, ``preview``.
- "Get product (offer) by id", ``GET /open-api/v1.0/products/{productId}``: the product
  (OfferFullV1: ``state`` {type AVAILABLE | SOLD_OUT} is stock, ``access`` {type PUBLIC | HIDDEN |
  PRIVATE | ARCHIVED} visibility); 404 ``OFFER_NOT_FOUND_BY_SHOP_ID_AND_ID_ERROR``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

OPEN_API = "/open-api/v1.0"
CUSTOMIZATIONS = f"{OPEN_API}/customizations"
PRODUCTS = f"{OPEN_API}/products"
PRODUCT_STATE = f"{OPEN_API}/products/{{productId}}/state"
PRODUCT = f"{OPEN_API}/products/{{productId}}"
PRODUCT_TEMPLATE = f"{OPEN_API}/product-templates/{{productId}}"  # public, general limit
HEAVY = (CUSTOMIZATIONS, PRODUCTS)  # "Rate limit: 5 requests / minute per shop"
MEDIA_UPLOAD_URL = f"{OPEN_API}/media/upload-url"  # "Rate limit: 20 requests / minute per shop"
MEDIA_IMAGES = f"{OPEN_API}/media/images"

TOO_MANY_REQUESTS = {
    "code": "OPEN_API_TOO_MANY_REQUESTS",
    "title": "Too many requests",
    "status": 429,
}


class _Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Region(_Body, frozen=True):
    region: str
    image_id: str
    placement_id: str | None = None
    placement_strategy: Literal["AUTO", "FILL_ALL", "FULL_REGION", "PLACEMENT_ID"] | None = None


class NewCustomization(_Body, frozen=True):
    product_template_id: str
    regions: list[Region] | None = None
    colors: list[str] | None = None
    sizes: list[str] | None = None


class DesignProduct(_Body, frozen=True, tag_field="type", tag="design"):
    product_template_id: str
    regions: list[Region]
    name: str
    colors: list[str] | None = None
    sizes: list[str] | None = None
    description: str | None = None
    profit_margin: float | None = None
    publish_on_create: bool | None = None


class DigitalProduct(_Body, frozen=True, tag_field="type", tag="digital"):
    name: str
    description: str
    price: float
    publish_on_create: bool | None = None


class CustomizationProduct(_Body, frozen=True, tag_field="type", tag="customization"):
    customization_id: str
    name: str | None = None
    description: str | None = None
    profit_margin: float | None = None
    publish_on_create: bool | None = None


NewProduct = DesignProduct | DigitalProduct | CustomizationProduct


class NewState(_Body, frozen=True):
    state: Literal["PUBLIC", "HIDDEN"]


class UploadUrlRequest(_Body, frozen=True):
    content_type: str
    file_name: str
    size: int


class SaveMediaImage(_Body, frozen=True):
    file_url: str
    width: int
    height: int
