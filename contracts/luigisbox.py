"""Luigi's Box: recommender pin scopes, create one
(``POST /v1/recommender/pin/{TRACKER_ID}/scope``), read, replace or delete one
(``GET``/``PUT``/``DELETE …/scope/{id}``), list them filtered by tag
(``POST /v1/recommender/pin/{TRACKER_ID}/scopes?tag=…``) and create many at once
(``POST …/scopes/_bulk``, NDJSON); and the
catalogue's content ("Content Update" ``POST /v1/content``, "Partial Content Update" ``PATCH``,
"Content Removal" ``DELETE``, all three on one path; the tracker comes from the signature).

snake_case on the wire. Requests are HMAC-signed (see ``service.upstreams.luigisbox_auth``); the
listing signs its path without the query string, as its page says.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from contracts.paths import segment

CONTENT_TYPE = "application/json; charset=utf-8"


def scope_path(tracker_id: str, scope_id: str | None = None) -> str:
    """A scope's path ("Create Customization"), or one scope's ("Delete Customization")."""
    base = f"/v1/recommender/pin/{segment(tracker_id)}/scope"
    return base if scope_id is None else f"{base}/{segment(scope_id)}"


def scopes_path(tracker_id: str) -> str:
    """The listing ("Get Customizations"); filters and pagination go in the query string."""
    return f"/v1/recommender/pin/{segment(tracker_id)}/scopes"


def bulk_scopes_path(tracker_id: str) -> str:
    """ "Bulk Create Customizations": signed without its ``conflict_strategy`` query."""
    return f"{scopes_path(tracker_id)}/_bulk"


NDJSON = "application/x-ndjson"
BULK_MAX_SCOPES = 5000  # "Up to 5000 pin scopes can be sent in a single request"
ConflictStrategy = Literal["raise", "ignore", "override"]


CONTENT_PATH = "/v1/content"
CONTENT_BATCH_LIMIT = 300  # the partial update's documented batch limit; POST: "around 100"
ITEM_TYPE = "item"


class ContentObject(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An index-object: ``identity``, ``type`` and ``fields`` (which must hold ``title``)."""

    identity: str
    type: str
    fields: dict[str, Any]


class ContentUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a content update (POST, a full replacement) or partial update (PATCH)."""

    objects: list[ContentObject]


class ContentRef(msgspec.Struct, frozen=True, kw_only=True):
    identity: str
    type: str


class ContentRemoval(msgspec.Struct, frozen=True, kw_only=True):
    objects: list[ContentRef]


class ContentError(msgspec.Struct, frozen=True, kw_only=True):
    type: str = ""
    reason: str = ""
    caused_by: dict[str, Any] = {}


class ContentResult(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a content call: how many objects were taken, and why each other one was
    not (by identity)."""

    ok_count: int = 0
    errors_count: int = 0
    errors: dict[str, ContentError] = {}


TargetType = Literal["item", "criteria", "all"]
PinType = Literal["item", "criteria"]


class PinDefinition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    position: int
    pin_type: PinType
    pin_identity: str | None = None
    pin_criteria: dict[str, Any] | None = None
    widget_id: str | None = None
    is_block_pin: bool | None = None
    is_bundle_pin: bool | None = None
    active_from: str | None = None
    active_to: str | None = None


class ScopeRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    model: str
    target_type: TargetType
    pin_definitions: list[PinDefinition]
    target_identity: str | None = None
    target_criteria: dict[str, Any] | None = None
    tags: list[str] | None = None
    target_metadata: dict[str, Any] | None = None


class ScopeResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A customization: as "Create Customization" answers it (``id``, ``model``,
    ``target_type``, ``created_at``), and as "Get Customization" and the listing give it (also
    ``tags``, ``pin_definitions``, ``creator``, ``available``)."""

    id: str
    model: str
    target_type: str
    created_at: str | None = None
    target_identity: str | None = None
    tags: list[str] | None = None
    pin_definitions: list[PinDefinition] | None = None
    available: bool | None = None


class ScopePagination(msgspec.Struct, frozen=True, kw_only=True):
    total: int | None = None


class ScopeList(msgspec.Struct, frozen=True, kw_only=True):
    """One page of "Get Customizations": ``pagination`` (``total``: how many match) and
    ``results``."""

    results: list[ScopeResponse] = []
    pagination: ScopePagination = ScopePagination()


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    reason: str = ""
    exception_details: dict[str, list[str]] = {}


def decode_error_body(body: bytes) -> ErrorBody | None:
    try:
        return msgspec.json.decode(body, type=ErrorBody)
    except msgspec.MsgspecError:
        return None
