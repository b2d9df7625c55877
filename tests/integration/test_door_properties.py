"""Every door, as properties: events built from the contract's bounds, valid and just outside
every one, driven through the real consume loop with the real ledger (SQLite and PostgreSQL) and
the sandbox over HTTP. Each message ends, on its first delivery, in exactly one of: done,
``product.failed`` with a permanent code, or dead-lettered as invalid; never ``INTERNAL_ERROR``,
never a retry.

About 2,000 examples in the default suite (1,000 a backend); ``make fuzz`` runs 50,000
(``MERCH_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.events import MAX_REVISION
from service.bootstrap import build_consumers, consume_loop, open_resources
from service.broker import headers
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.settings import load_settings
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import config_toml, running_sandbox, sandbox_config
from tests.unit.fakes import FakeMessage, RecordingPublisher

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("MERCH_FUZZ_EXAMPLES", "1000"))
INVALID = {"schema_violation", "invalid_json", "not_a_cloudevent", "unknown_type", "too_large"}
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


LOOP = asyncio.new_event_loop()


def setup_module() -> None:
    # thousands of messages: their canonical log lines would only slow the run
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def teardown_module() -> None:
    structlog.reset_defaults()


@contextlib.contextmanager
def consume_loop_on(tmp: Path, database: str) -> Iterator[Any]:
    """The design-approved consume loop, wired as in production, over the sandbox."""
    sandbox_cm = running_sandbox(sandbox_config(3, heavy_calls=10**9, calls=10**9))
    sandbox = LOOP.run_until_complete(sandbox_cm.__aenter__())
    config = tmp / "config.toml"
    config.write_text(config_toml(sandbox.config))
    service_settings = load_settings(
        {
            "DATABASE_URL": database,
            "FOURTHWALL_API_URL": sandbox.url,
            "LUIGISBOX_API_URL": sandbox.url,
            "CONFIG_FILE": str(config),
            "QUOTA_ENABLED": "false",
            "MAX_ATTEMPTS": "5",
        }
    )
    resources = LOOP.run_until_complete(open_resources(service_settings))
    try:
        [bound] = build_consumers(service_settings, resources, ("design-approved",))
        yield lambda publisher: consume_loop(bound, publisher, service_settings, resources)
    finally:
        LOOP.run_until_complete(resources.aclose())
        LOOP.run_until_complete(sandbox_cm.__aexit__(None, None, None))


def outcome_of(publisher: RecordingPublisher, message: FakeMessage) -> str:
    assert message.settled == ["ack"], message.settled  # settled once, on this delivery
    if publisher.copies == [] and publisher.events == ["product.created"]:
        return "done"
    assert publisher.copies == [DESIGN_APPROVED_QUEUE.dead_letter], publisher.copies
    written = headers.Failure.from_headers(publisher.copied[0].headers)
    assert written.code != "INTERNAL_ERROR", written.detail
    if publisher.events == ["product.failed"]:
        assert written.reason == "permanent_failure", written
        return "failed"
    assert publisher.events == [] and written.reason in INVALID, written
    assert written.detail  # the field and the rule
    return "invalid"


def check_every_door(loop_for: Any) -> dict[str, int]:
    seen: dict[str, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=design_data())
    def one(data: dict[str, Any]) -> None:
        publisher = RecordingPublisher()
        message = FakeMessage(body_of(data), "application/cloudevents+json", {})
        LOOP.run_until_complete(loop_for(publisher).on_message(message))  # type: ignore[arg-type]
        kind = outcome_of(publisher, message)
        seen[kind] = seen.get(kind, 0) + 1

    one()
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_message_ends_done_failed_or_invalid_on_its_first_delivery(
    backend: str, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            database = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        else:
            pg = throwaway_postgres()
            database = LOOP.run_until_complete(pg.__aenter__())
            stack.callback(lambda: LOOP.run_until_complete(pg.__aexit__(None, None, None)))
        loop_for = stack.enter_context(consume_loop_on(tmp_path, database))
        seen = check_every_door(loop_for)
    print(f"every door ({backend}): {seen}")
    assert set(seen) <= {"done", "failed", "invalid"}
    assert seen.get("done") and seen.get("invalid")  # the generator reaches both sides
