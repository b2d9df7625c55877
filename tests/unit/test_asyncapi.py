"""The AsyncAPI document validates against the official AsyncAPI 3.0 schema, and real events
validate against the JSON Schemas it publishes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from contracts.events import DESIGN_APPROVED, EVENT_TYPES
from service.api.asyncapi import asyncapi_document
from service.samples import design_event, sample_design
from tests.support import cached_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def official_schema() -> dict[str, Any]:
    path = cached_tool("ensure-asyncapi-schema.sh", "the AsyncAPI schema")
    return json.loads(Path(path).read_text())  # type: ignore[no-any-return]


def test_document_is_valid_asyncapi_3(official_schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(official_schema).validate(asyncapi_document())


def test_every_event_type_has_a_channel_and_the_direction_we_use_it_in() -> None:
    doc = asyncapi_document()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {t.routing_key for t in EVENT_TYPES.values()}
    actions = {
        op["channel"]["$ref"].rsplit("/", 1)[-1]: op["action"] for op in doc["operations"].values()
    }
    assert actions == {
        "designApproved": "receive",
        "designWithdrawn": "receive",
        "fourthwallProductChanged": "receive",
        "productCreated": "send",
        "productFailed": "send",
        "pinsCreated": "send",
        "productWithdrawn": "send",
    }


def _validator(name: str) -> jsonschema.Draft202012Validator:
    doc = asyncapi_document()
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    )


def test_a_sample_design_event_validates_and_a_broken_one_does_not() -> None:
    event = msgspec.json.decode(msgspec.json.encode(design_event(sample_design("s", 0, "a"))))
    validator = _validator(f"{DESIGN_APPROVED.data.__name__}Event")
    validator.validate(event)
    event["data"]["revision"] = "two"
    assert list(validator.iter_errors(event))
    del event["data"]
    assert list(validator.iter_errors(event))


def test_cli_prints_the_same_document() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "asyncapi"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == json.loads(json.dumps(asyncapi_document()))
