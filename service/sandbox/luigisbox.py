"""Sandbox Luigi's Box, behind the documented HMAC scheme (``service.sandbox.signing``): pin
scopes ("Create Customization", "Get Customization", "Update Customization" (a full replace,
204), "Delete Customization", and the listing "Get Customizations", filtered by model, tag,
target type and identity with limit/offset, answering ``{"pagination": {"total"}, "results"}``),
and each tracker's catalogue (content update, partial update, removal on ``/v1/content``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from service.sandbox.config import SandboxConfig
from service.sandbox.signing import api_auth, luigisbox_signature, same

CONTENT_TYPE = "application/json; charset=utf-8"  # "Required" on every documented call
NDJSON = "application/x-ndjson"  # "Bulk Create Customizations": one customization a line
BULK_MAX = 5000  # "Up to 5000 pin scopes can be sent in a single request"
CONFLICT_STRATEGIES = ("raise", "ignore", "override")
CONTENT_PATH = "/v1/content"
CONTENT_BATCH_LIMIT = 300  # "The batch limit for this endpoint is 300 objects per request"


def scope_path(tracker_id: str) -> str:
    return f"/v1/recommender/pin/{tracker_id}/scope"


def scopes_path(tracker_id: str) -> str:
    return f"/v1/recommender/pin/{tracker_id}/scopes"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


Answer = tuple[int, dict[str, Any], dict[str, str]]

_TARGET_TYPES = ("item", "criteria", "all")
_PIN_TYPES = ("item", "criteria")


def _fail(status: int, reason: str, details: dict[str, list[str]] | None = None) -> Answer:
    body: dict[str, Any] = {"reason": reason}
    if details:
        body["exception_details"] = details
    return status, body, {}


class LuigisBoxSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.keys = {t.tracker_id: t.private_key for t in config.trackers}
        self.scopes: list[dict[str, Any]] = []
        self.content: dict[str, dict[str, dict[str, Any]]] = {}  # tracker → identity → object

    def content_tracker(self, headers: dict[str, str]) -> str:
        """``/v1/content`` names no tracker in its path: the signature's does."""
        parsed = api_auth(headers.get("authorization", ""))
        return parsed[0] if parsed else ""

    def check_auth(
        self,
        tracker_id: str,
        headers: dict[str, str],
        now: datetime,
        path: str | None = None,
        method: str = "POST",
        content_type_wanted: str = CONTENT_TYPE,
    ) -> Answer | None:
        """The HMAC check over ``method`` and ``path`` (the scope path unless given; the
        listing's and the bulk create's paths are signed without their query string)."""
        if tracker_id not in self.keys:
            return _fail(404, "Tracker not found")
        content_type = headers.get("content-type", "")
        date = headers.get("date", "")
        parsed = api_auth(headers.get("authorization", ""))
        if parsed is None or parsed[0] != tracker_id or not date:
            return _fail(401, "Missing or invalid authentication")
        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return _fail(401, "Missing or invalid authentication")
        if sent.tzinfo is None or abs((now - sent).total_seconds()) > self.config.date_skew_s:
            return _fail(401, "Missing or invalid authentication")
        expected = luigisbox_signature(
            self.keys[tracker_id], method, content_type, date, path or scope_path(tracker_id)
        )
        if not same(expected, parsed[1]):
            return _fail(401, "Missing or invalid authentication")
        if content_type != content_type_wanted:
            return _fail(
                400,
                "Invalid configuration provided",
                {"content_type": [f"Must be {content_type_wanted}"]},
            )
        return None

    def create_scope(self, tracker_id: str, body: bytes) -> Answer:
        raw = self._definition(body)
        if isinstance(raw, tuple):
            return raw
        return 201, self._made(tracker_id, raw), {}

    def _made(self, tracker_id: str, raw: dict[str, Any]) -> dict[str, Any]:
        """A new customization held for the tracker; answers what a create answers."""
        scope = {
            "id": str(uuid.uuid4()),
            "model": raw["model"],
            "target_type": raw["target_type"],
            "target_identity": raw.get("target_identity"),
            "created_at": now_iso(),
        }
        self.scopes.append({**scope, "tracker_id": tracker_id, "request": raw})
        return scope

    def bulk_create(self, tracker_id: str, body: bytes, strategy: str) -> Answer:
        """ "Bulk Create Customizations": NDJSON, each line a customization as "Create
        Customization" takes it; 200 ``{}``; 413 past 5,000 lines; 422 for an invalid pin
        definition, 400 for a line that is no customization (nothing is created then).
        ``conflict_strategy`` raise (409), ignore (keep existing), override (replace
        existing). The page does not say what conflicts; here, as the assumption in
        docs/upstreams.md: a customization of the same model, target type and target."""
        if strategy not in CONFLICT_STRATEGIES:
            return _fail(
                400,
                "Invalid configuration provided",
                {"conflict_strategy": ["Must be one of: raise, ignore, override"]},
            )
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > BULK_MAX:
            return _fail(413, "Too many customizations in one request")
        definitions = []
        for line in lines:
            raw = self._definition(line)
            if isinstance(raw, tuple):
                return raw
            definitions.append(raw)

        def target(raw: dict[str, Any]) -> tuple[Any, ...]:
            return (
                raw["model"],
                raw["target_type"],
                raw.get("target_identity"),
                msgspec.json.encode(raw.get("target_criteria")),
            )

        held = {target(s["request"]): s for s in self.scopes if s["tracker_id"] == tracker_id}
        conflicts = [raw for raw in definitions if target(raw) in held]
        if conflicts and strategy == "raise":
            return _fail(409, "Conflict detected")
        for raw in definitions:
            existing = held.get(target(raw))
            if existing is not None and strategy == "ignore":
                continue
            if existing is not None:  # override
                existing.update(request=raw)
                continue
            self._made(tracker_id, raw)
            held[target(raw)] = self.scopes[-1]
        return 200, {}, {}

    def _find(self, tracker_id: str, scope_id: str) -> dict[str, Any] | None:
        return next(
            (s for s in self.scopes if s["tracker_id"] == tracker_id and s["id"] == scope_id),
            None,
        )

    def get_scope(self, tracker_id: str, scope_id: str) -> Answer:
        """ "Get Customization": the full customization object, or 404."""
        scope = self._find(tracker_id, scope_id)
        if scope is None:
            return _fail(404, "Customization not found")
        return 200, self._listed(scope), {}

    def replace_scope(self, tracker_id: str, scope_id: str, body: bytes) -> Answer:
        """ "Update Customization": the whole definition replaced (the body as a create's);
        204, or 404 for a scope the tracker does not hold."""
        scope = self._find(tracker_id, scope_id)
        if scope is None:
            return _fail(404, "Customization not found")
        raw = self._definition(body)
        if isinstance(raw, tuple):
            return raw
        scope.update(
            model=raw["model"],
            target_type=raw["target_type"],
            target_identity=raw.get("target_identity"),
            request=raw,
        )
        return 204, {}, {}

    def _definition(self, body: bytes) -> dict[str, Any] | Answer:
        """A customization's definition as "Create Customization" documents it, or the
        documented 400/422 with its ``exception_details``."""
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return _fail(400, "Invalid configuration provided", {"body": ["Must be JSON"]})
        if not isinstance(raw, dict):
            return _fail(400, "Invalid configuration provided", {"body": ["Must be an object"]})
        config_errors: dict[str, list[str]] = {}
        if not isinstance(raw.get("model"), str) or not raw["model"]:
            config_errors["model"] = ["Missing required field: model"]
        target_type = raw.get("target_type")
        if target_type not in _TARGET_TYPES:
            config_errors["target_type"] = ["Must be one of: item, criteria, all"]
        if target_type == "item" and not isinstance(raw.get("target_identity"), str):
            config_errors["target_identity"] = ["Required when target_type is item"]
        if target_type == "criteria" and not isinstance(raw.get("target_criteria"), dict):
            config_errors["target_criteria"] = ["Required when target_type is criteria"]
        if "tags" in raw and not (
            isinstance(raw["tags"], list) and all(isinstance(t, str) for t in raw["tags"])
        ):
            config_errors["tags"] = ["Must be a list of strings"]
        if config_errors:
            return _fail(400, "Invalid configuration provided", config_errors)
        pin_errors = self._pin_errors(raw.get("pin_definitions"))
        if pin_errors:
            return _fail(422, "Invalid pin definition provided", {"pin_definitions": pin_errors})
        return raw

    def delete_scope(self, tracker_id: str, scope_id: str) -> Answer:
        """ "Delete Customization": 204, or 404 for a scope the tracker does not have."""
        for n, scope in enumerate(self.scopes):
            if scope["tracker_id"] == tracker_id and scope["id"] == scope_id:
                del self.scopes[n]
                return 204, {}, {}
        return _fail(404, "Customization not found")

    def list_scopes(self, tracker_id: str, query: dict[str, list[str]]) -> Answer:
        """The tracker's scopes matching every given filter (each filter: any of its values)."""
        try:
            limit = int(query.get("limit", ["10"])[-1])
            offset = int(query.get("offset", ["0"])[-1])
        except ValueError:
            return _fail(422, "Validation error", {"limit": ["Must be an integer"]})
        if limit < 0 or offset < 0:
            return _fail(422, "Validation error", {"limit": ["Must not be negative"]})
        bad_types = [t for t in query.get("target_type", []) if t not in _TARGET_TYPES]
        if bad_types:
            return _fail(422, "Validation error", {"target_type": [f"Invalid: {bad_types[0]}"]})

        def matches(scope: dict[str, Any]) -> bool:
            tags = scope["request"].get("tags") or []
            return (
                scope["tracker_id"] == tracker_id
                and _any_of(query.get("model"), [scope["model"]])
                and _any_of(query.get("tag"), tags)
                and _any_of(query.get("target_type"), [scope["target_type"]])
                and _any_of(query.get("target_identity"), [scope["target_identity"]])
            )

        found = [self._listed(s) for s in self.scopes if matches(s)]
        page = found[offset : offset + limit]
        return 200, {"pagination": {"total": len(found)}, "results": page}, {}

    def update_content(self, tracker_id: str, method: str, body: bytes) -> Answer:
        """POST puts each object (a full replacement), PATCH changes the given fields of objects
        that exist, DELETE removes objects by type and identity. Per-object errors are listed
        by identity, with how many objects were taken."""
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return _fail(400, "Malformed JSON")
        objects = raw.get("objects") if isinstance(raw, dict) else None
        if not isinstance(objects, list) or not objects:
            return _fail(400, "Missing required field: objects")
        if len(objects) > CONTENT_BATCH_LIMIT:
            return _fail(400, f"At most {CONTENT_BATCH_LIMIT} objects per request")
        catalogue = self.content.setdefault(tracker_id, {})
        errors: dict[str, dict[str, Any]] = {}
        ok = 0
        for index, obj in enumerate(objects):
            identity = obj.get("identity") if isinstance(obj, dict) else None
            key = identity if isinstance(identity, str) and identity else f"[{index}]"
            problem = _content_problem(obj, method, catalogue)
            if problem:
                errors[key] = {"type": "malformed_input", "reason": problem[0], **problem[1]}
                continue
            ok += 1
            if method == "POST":
                catalogue[key] = {"identity": key, "type": obj["type"], "fields": obj["fields"]}
            elif method == "PATCH":
                catalogue[key]["fields"] = {**catalogue[key]["fields"], **obj.get("fields", {})}
            else:
                catalogue.pop(key, None)
        result = {"ok_count": ok, "errors_count": len(errors)}
        if errors:
            return 400, {**result, "errors": errors}, {}
        return 200, result, {}

    @staticmethod
    def _listed(scope: dict[str, Any]) -> dict[str, Any]:
        """The customization object "Get Customization" documents."""
        raw = scope["request"]
        keys = ("id", "model", "target_type", "target_identity", "created_at")
        return {
            **{k: scope[k] for k in keys},
            "target_criteria": raw.get("target_criteria"),
            "tags": raw.get("tags") or [],
            "pin_definitions": raw.get("pin_definitions") or [],
            "creator": "api",
            "available": True,
        }

    @staticmethod
    def _pin_errors(pins: Any) -> list[str]:
        if not isinstance(pins, list):
            return ["Missing required field: pin_definitions"]
        found: list[str] = []
        for index, pin in enumerate(pins):
            if not isinstance(pin, dict):
                found.append(f"[{index}] must be an object")
                continue
            if not isinstance(pin.get("position"), int) or isinstance(pin.get("position"), bool):
                found.append(f"[{index}] Missing required field: position")
            if pin.get("pin_type") not in _PIN_TYPES:
                found.append(f"[{index}] pin_type must be one of: item, criteria")
            elif pin["pin_type"] == "item" and not isinstance(pin.get("pin_identity"), str):
                found.append(f"[{index}] pin_identity is required when pin_type is item")
            for key in ("active_from", "active_to"):
                if key in pin and not _is_datetime(pin[key]):
                    found.append(f"[{index}] {key} must be an ISO 8601 date-time")
        return found


def _content_problem(
    obj: Any, method: str, catalogue: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]] | None:
    """Why one object of a content request is refused (reason, ``caused_by``), or None."""
    if not isinstance(obj, dict):
        return "incorrect object format", {}
    missing = [k for k in ("identity", "type") if not isinstance(obj.get(k), str) or not obj[k]]
    if method == "POST":
        fields = obj.get("fields")
        if not isinstance(fields, dict):
            missing.append("fields")
        elif not isinstance(fields.get("title"), str) or not fields["title"]:
            return "incorrect object format", {"caused_by": {"title": ["must be filled"]}}
    if method == "PATCH" and "type" in missing:
        missing.remove("type")  # a partial update names the object by its identity
    if missing:
        return "incorrect object format", {"caused_by": {k: ["is missing"] for k in missing}}
    if method == "PATCH" and obj["identity"] not in catalogue:
        return "object not found", {}
    if method == "PATCH" and "type" in obj and obj["type"] != catalogue[obj["identity"]]["type"]:
        return "type cannot be changed", {}
    return None


def _any_of(wanted: list[str] | None, present: list[Any]) -> bool:
    return not wanted or any(value in present for value in wanted)


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
