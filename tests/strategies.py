"""Design events built from the contract's bounds: valid ones (ordinary, at a bound, odd but
allowed) and ones with a single field just outside its bound. Shared by the every-door suites."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.events import MAX_REVISION

SHOPS = ["shop-1", "shop-2", "shop-3"]

# Valid values (ordinary, at a bound, odd but allowed) and values just outside each bound.
odd_ids = st.sampled_from(["d:1:2", "a/b/c", "50%", "~tilde", "space id", "ü☃", "x" * 256])
ids = st.one_of(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), odd_ids)
bad_ids = st.sampled_from(["", "a\x00b", "tab\tid", "new\nline", "end\n", "del\x7f", "x" * 257])
GOOD = {
    "revision": st.one_of(st.integers(1, 5), st.just(MAX_REVISION)),
    "name": st.sampled_from(["Tee", "two\nlines\tand tab", "N" * 256]),
    "description": st.sampled_from([None, "fine", "d" * 10_000]),
    "profit_margin": st.sampled_from([5.0, 0.0, None]),
}
BAD: dict[str, st.SearchStrategy[Any]] = {
    "shop_id": bad_ids,
    "design_id": bad_ids,
    "image_id": bad_ids,
    "revision": st.sampled_from([0, -1, MAX_REVISION + 1, 2**63, 10**30, "1", 1.5]),
    "name": st.sampled_from(["", "nul\x00", "N" * 257]),
    "description": st.sampled_from(["d" * 10_001, "\x00"]),
    "profit_margin": st.sampled_from([-1.0, "five"]),
    "colors": st.sampled_from([["\x00"], ["c"] * 101]),
    "pin_on_items": st.sampled_from([["\x00"], ["i"] * 101, [""]]),
}


@st.composite
def design_data(draw: st.DrawFn) -> dict[str, Any]:
    """A valid design, and half the time one field pushed just outside its bound."""
    values: dict[str, Any] = {
        "shop_id": draw(st.sampled_from(SHOPS)),
        "design_id": draw(ids),
        "image_id": "img_" + draw(ids),  # the sandbox knows images by their prefix
        "colors": draw(st.sampled_from([None, ["Black"], ["White"]])),
        "pin_on_items": draw(st.lists(ids, max_size=2)),
        **{field: draw(strategy) for field, strategy in GOOD.items()},
    }
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(BAD)))
        values[field] = draw(BAD[field])
    data: dict[str, Any] = {
        "shop_id": values["shop_id"],
        "design_id": values["design_id"],
        "revision": values["revision"],
        "product_template_id": draw(st.sampled_from(["pro_tee", "pro_tee", "pro_unknown"])),
        "regions": [{"region": "front", "image_id": values["image_id"]}],
        "product": {
            "name": values["name"],
            "description": values["description"],
            "profit_margin": values["profit_margin"],
        },
        "recommendations": {"pin_on_items": values["pin_on_items"], "tags": []},
    }
    if values["colors"] is not None:
        data["colors"] = values["colors"]
    return data


def body_of(data: dict[str, Any]) -> bytes:
    envelope = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "urn:fuzz",
        "type": "merch.design.approved.v1",
        "data": data,
    }
    return msgspec.json.encode(envelope)


def generated_bodies(count: int) -> list[bytes]:
    """``count`` envelopes from ``design_data``, the same ones every run."""
    found: list[bytes] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(design_data())
    def collect(data: dict[str, Any]) -> None:
        found.append(body_of(data))

    collect()
    return found
