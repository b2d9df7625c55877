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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings

from service.bootstrap import build_consumers, consume_loop, open_resources
from service.broker import headers
from service.broker.parking import Releaser
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.settings import load_settings
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import config_toml, running_sandbox, sandbox_config
from tests.strategies import body_of, design_data
from tests.unit.fakes import FakeMessage, RecordingPublisher

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("MERCH_FUZZ_EXAMPLES", "1000"))
INVALID = {"schema_violation", "invalid_json", "not_a_cloudevent", "unknown_type", "too_large"}

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
        yield lambda publisher: consume_loop(
            bound, publisher, service_settings, resources, Releaser(resources.parking, publisher)
        )
    finally:
        LOOP.run_until_complete(resources.aclose())
        LOOP.run_until_complete(sandbox_cm.__aexit__(None, None, None))


def outcome_of(publisher: RecordingPublisher, message: FakeMessage, older: bool = False) -> str:
    """``older``: the message approves a revision older than one done before in this run."""
    assert message.settled == ["ack"], message.settled  # settled once, on this delivery
    if publisher.copies == [] and publisher.events == ["product.created"]:
        return "done"
    if older and publisher.copies == [] and publisher.events == []:
        return "superseded"  # an older revision than one recorded changes nothing
    assert publisher.copies == [DESIGN_APPROVED_QUEUE.dead_letter], publisher.copies
    written = headers.Failure.from_headers(publisher.copied[0].headers)
    assert written.code != "INTERNAL_ERROR", written.detail
    if publisher.events == ["product.failed"]:
        assert written.reason == "permanent_failure", written
        return "failed"
    assert publisher.events == [] and written.reason in INVALID, written
    assert written.detail  # the field and the rule
    return "invalid"


def _design_of(data: Any) -> dict[str, Any]:
    """The design fields of a generated message, as far as it has them."""
    inner = data.get("data") if isinstance(data, dict) else None
    found = inner if isinstance(inner, dict) else data
    return found if isinstance(found, dict) else {}


def check_every_door(loop_for: Any) -> dict[str, int]:
    seen: dict[str, int] = {}
    newest: dict[tuple[Any, Any], int] = {}  # (shop, design) → highest revision recorded

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
        design = _design_of(data)
        revision = design.get("revision", 1) if isinstance(design.get("revision", 1), int) else 0
        key = (design.get("shop_id"), design.get("design_id"))
        kind = outcome_of(publisher, message, older=revision < newest.get(key, revision))
        if kind in ("done", "failed"):  # the ledger recorded this revision
            newest[key] = max(newest.get(key, revision), revision)
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
    assert set(seen) <= {"done", "failed", "invalid", "superseded"}
    assert seen.get("done") and seen.get("invalid")  # the generator reaches both sides
