"""Our events, version 1. ``data`` is snake_case; the envelope is a CloudEvent.

Exchange ``merch.events`` (topic). Each event type names its routing key and its data Struct
in ``EVENT_TYPES``; a consumer looks the type up there and rejects any type it does not know.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import msgspec.inspect

from contracts.cloudevents import CloudEvent
from contracts.errors import ContractError, from_msgspec

EXCHANGE = "merch.events"
SOURCE = "urn:merch-pipeline"

# The bounds every field keeps, so that whatever passes the contract the ledger can hold on both
# backends (PostgreSQL's INTEGER and text: no NUL) and an operator can read and address.
MAX_REVISION = 2**31 - 1  # the ledger's INTEGER column
# No control characters, to the very end: "(?![\s\S])" rather than "$", which in Python (and
# so in msgspec) also matches before a final newline. Valid in JSON Schema's dialect too.
ID_PATTERN = r"^[^\x00-\x1f\x7f]+(?![\s\S])"
Id = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=256,
        pattern=ID_PATTERN,
        description="1 to 256 characters, no control characters",
    ),
]
Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00]+$",
        description="1 to 256 characters, no NUL (tabs and newlines are kept)",
    ),
]
Text = Annotated[
    str,
    msgspec.Meta(
        max_length=10_000, pattern=r"^[^\x00]*$", description="up to 10,000 characters, no NUL"
    ),
]
Revision = Annotated[int, msgspec.Meta(ge=1, le=MAX_REVISION)]
NonEmpty = Id
PlacementStrategy = Literal["AUTO", "FILL_ALL", "FULL_REGION", "PLACEMENT_ID"]


ArtworkUrl = Annotated[
    str,
    msgspec.Meta(
        max_length=2048,
        pattern=r"^https?://[^\s\x00-\x1f\x7f]+(?![\s\S])",
        description="an http(s) URL of a PNG or JPEG, on a host the service is told to fetch from",
    ),
]


class DesignRegion(msgspec.Struct, frozen=True, kw_only=True):
    """One print region: its artwork is a Fourthwall image (``image_id``) or an image the
    producer hosts (``image_url``), which the service uploads to the shop's media library once
    per content and then uses as the region's image."""

    region: Id
    image_id: Id | None = None
    image_url: ArtworkUrl | None = None
    placement_strategy: PlacementStrategy = "AUTO"
    placement_id: Id | None = None

    def __post_init__(self) -> None:
        if (self.image_id is None) == (self.image_url is None):
            raise ValueError("a region takes exactly one of image_id and image_url")
        if self.placement_strategy == "PLACEMENT_ID" and not self.placement_id:
            raise ValueError("placement_id is required when placement_strategy is PLACEMENT_ID")


class ProductSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    description: Text | None = None
    profit_margin: Annotated[float, msgspec.Meta(ge=0)] | None = None
    publish_on_create: bool | None = None


class Recommendations(msgspec.Struct, frozen=True, kw_only=True):
    pin_on_items: Annotated[list[Id], msgspec.Meta(max_length=100)] = []
    tags: Annotated[list[Id], msgspec.Meta(max_length=50)] = []


class DesignApprovedV1(msgspec.Struct, frozen=True, kw_only=True):
    """A design a shop approved: make it a product and promote it."""

    shop_id: Id
    design_id: Id
    product_template_id: Id
    product: ProductSpec
    revision: Revision = 1
    regions: Annotated[list[DesignRegion], msgspec.Meta(max_length=20)] = []
    colors: Annotated[list[Id], msgspec.Meta(max_length=100)] | None = None
    sizes: Annotated[list[Id], msgspec.Meta(max_length=100)] | None = None
    customization_id: Id | None = None
    recommendations: Recommendations | None = None

    def __post_init__(self) -> None:
        if not self.regions and self.customization_id is None:
            raise ValueError("regions must not be empty unless customization_id is given")
        names = [r.region for r in self.regions]
        if len(names) != len(set(names)):
            raise ValueError(f"regions name a region more than once: {sorted(names)}")


class ProductImage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A rendered image as Fourthwall returned it."""

    url: str
    width: int
    height: int
    style: str
    color: str
    size: str | None = None
    region: str | None = None


class ProductCreatedV1(msgspec.Struct, frozen=True, kw_only=True):
    shop_id: Id
    design_id: Id
    revision: Revision
    customization_id: Id
    product_id: Id
    name: str
    created_at: str
    images: list[ProductImage] = []
    recommendations: Recommendations | None = None
    # Whether Fourthwall made the product public on creation (``publish_on_create``); absent in
    # events of versions before it was added, which are taken as not known to be public.
    published: bool | None = None


FailureStage = Literal["input", "customization", "product", "pins"]


class ProductFailedV1(msgspec.Struct, frozen=True, kw_only=True):
    shop_id: str
    design_id: str
    revision: int
    stage: FailureStage
    code: str
    detail: str
    retryable: bool
    attempts: int
    product_id: str | None = None


class PinScope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    scope_id: str
    model: str
    target_type: str
    position: int
    target_identity: str | None = None
    pin_identity: str | None = None
    active_from: str | None = None
    active_to: str | None = None


class PinsCreatedV1(msgspec.Struct, frozen=True, kw_only=True):
    shop_id: str
    design_id: str
    product_id: str
    scopes: list[PinScope]


WithdrawReason = Literal["withdrawn", "superseded", "archived_upstream"]


class ProductWithdrawnV1(msgspec.Struct, frozen=True, kw_only=True):
    """A product we made is no longer promoted: hidden on Fourthwall, its pin scopes deleted
    and its object removed from the shop's Luigi's Box catalogue."""

    shop_id: str
    design_id: str
    revision: int
    product_id: str
    reason: WithdrawReason
    withdrawn_at: str


class DesignWithdrawnV1(msgspec.Struct, frozen=True, kw_only=True):
    """A design a shop withdrew (a rights claim, a typo): with ``revision``, that revision and
    every lower one; without, the design itself, every revision known now and any approved
    later. Each product made from them stops being promoted (``product.withdrawn``)."""

    shop_id: Id
    design_id: Id
    revision: Revision | None = None
    reason: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=1_000,
                pattern=r"^[^\x00]*$",
                description="up to 1,000 characters, no NUL",
            ),
        ]
        | None
    ) = None


class FourthwallProductChangedV1(msgspec.Struct, frozen=True, kw_only=True):
    """A product changed in Fourthwall (a shop owner published, renamed, hid or archived it),
    from Fourthwall's signed webhook, checked and put on ``merch.events`` by our webhook door
    for our consumer to bring Luigi's Box in line. Our own event: producers do not send it."""

    shop_id: Id  # ours (the [[shops]] table whose fourthwall_shop_id sent it)
    product_id: Id
    fourthwall_event_id: Id  # the webhook event's id: one change, however often delivered
    fourthwall_type: Id  # PRODUCT_CREATED or PRODUCT_UPDATED
    name: Name
    # The product's visibility, as the previous version wrote it; since ``access`` came, the
    # same value as ``access`` (an event of the previous version has only this field).
    state: Id
    changed_at: Id  # the product's updatedAt (else the event's createdAt): orders changes
    image_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    access: Id | None = None  # access.type: PUBLIC, HIDDEN, PRIVATE, ARCHIVED
    stock: Id | None = None  # state.type: AVAILABLE, SOLD_OUT


EventData = (
    DesignApprovedV1
    | DesignWithdrawnV1
    | FourthwallProductChangedV1
    | ProductCreatedV1
    | ProductFailedV1
    | PinsCreatedV1
    | ProductWithdrawnV1
)


class EventType(msgspec.Struct, frozen=True):
    name: str
    routing_key: str
    data: type[EventData]


DESIGN_APPROVED = EventType("merch.design.approved.v1", "design.approved", DesignApprovedV1)
DESIGN_WITHDRAWN = EventType("merch.design.withdrawn.v1", "design.withdrawn", DesignWithdrawnV1)
FOURTHWALL_PRODUCT_CHANGED = EventType(
    "merch.fourthwall.product.changed.v1",
    "fourthwall.product.changed",
    FourthwallProductChangedV1,
)
PRODUCT_CREATED = EventType("merch.product.created.v1", "product.created", ProductCreatedV1)
PRODUCT_FAILED = EventType("merch.product.failed.v1", "product.failed", ProductFailedV1)
PINS_CREATED = EventType("merch.pins.created.v1", "pins.created", PinsCreatedV1)
PRODUCT_WITHDRAWN = EventType("merch.product.withdrawn.v1", "product.withdrawn", ProductWithdrawnV1)

EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        DESIGN_APPROVED,
        DESIGN_WITHDRAWN,
        PRODUCT_CREATED,
        PRODUCT_FAILED,
        PINS_CREATED,
        PRODUCT_WITHDRAWN,
        FOURTHWALL_PRODUCT_CHANGED,
    )
}
_TYPE_OF_DATA = {t.data: t for t in EVENT_TYPES.values()}


def event_type_of(data: EventData) -> EventType:
    return _TYPE_OF_DATA[type(data)]


def decode_data(event: CloudEvent, expected: EventType) -> EventData:
    """Decode ``event.data`` as ``expected`` says; the error names the ``$.data`` field."""
    if event.type != expected.name:
        known = event.type in EVENT_TYPES
        raise ContractError(
            "unexpected_type" if known else "unknown_type",
            f"type {event.type!r} is not consumed here (expected {expected.name!r})",
        )
    try:
        return msgspec.json.decode(event.data, type=expected.data)
    except msgspec.ValidationError as exc:
        raise from_msgspec("schema_violation", exc, prefix="$.data") from None
    except msgspec.DecodeError as exc:
        raise ContractError("invalid_json", str(exc)) from None


def unknown_fields(data: bytes, expected: EventType) -> list[str]:
    """The paths of fields in ``data`` that ``expected`` does not define. Consumers ignore
    them (new fields must not break old consumers); the admin API's "try it" endpoint reports
    them, so a typo is caught before it is silently dropped."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return []
    found: list[str] = []
    _walk(raw, msgspec.inspect.type_info(expected.data), "$.data", found)
    return found


def _walk(value: object, info: msgspec.inspect.Type, path: str, found: list[str]) -> None:
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if not isinstance(member, msgspec.inspect.NoneType):
                _walk(value, member, path, found)
    elif isinstance(info, msgspec.inspect.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        for key, item in value.items():
            if key not in fields:
                found.append(f"{path}.{key}")
            else:
                _walk(item, fields[key], f"{path}.{key}", found)
    elif isinstance(info, msgspec.inspect.ListType) and isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, info.item_type, f"{path}[{index}]", found)


_encoder = msgspec.json.Encoder()


def make_event(
    data: EventData,
    *,
    event_id: str,
    time: str,
    correlation_id: str | None,
    traceparent: str | None,
    subject: str | None = None,
) -> CloudEvent:
    """Wrap ``data`` in a CloudEvent of its type (structured mode)."""
    return CloudEvent(
        specversion="1.0",
        id=event_id,
        source=SOURCE,
        type=event_type_of(data).name,
        subject=subject,
        time=time,
        datacontenttype="application/json",
        correlationid=correlation_id,
        traceparent=traceparent,
        data=msgspec.Raw(_encoder.encode(data)),
    )
