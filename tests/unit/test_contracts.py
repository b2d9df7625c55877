from __future__ import annotations

import msgspec
import pytest

from contracts.cloudevents import binary_attributes, decode_binary, decode_structured
from contracts.errors import ContractError
from contracts.events import (
    DESIGN_APPROVED,
    PRODUCT_CREATED,
    DesignApprovedV1,
    decode_data,
    unknown_fields,
)
from contracts.fourthwall import (
    CUSTOMIZATION_PRODUCT_TYPE,
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductRequestV1,
    ProductDesignRegionV1,
    decode_error_body,
)

DESIGN = {
    "shop_id": "shop-1",
    "design_id": "d-1",
    "product_template_id": "pro_tee",
    "regions": [{"region": "front", "image_id": "img_1"}],
    "product": {"name": "Tee"},
}


def envelope(data: object, **attrs: object) -> bytes:
    return msgspec.json.encode(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "urn:test",
            "type": "merch.design.approved.v1",
            "data": data,
            **attrs,
        }
    )


def test_structured_design_event_decodes_with_defaults() -> None:
    event = decode_structured(envelope(DESIGN))
    design = decode_data(event, DESIGN_APPROVED)
    assert isinstance(design, DesignApprovedV1)
    assert design.revision == 1
    assert design.regions[0].placement_strategy == "AUTO"
    assert design.customization_id is None


def test_unknown_fields_are_tolerated_in_consumed_events() -> None:
    event = decode_structured(
        envelope({**DESIGN, "added_in_a_later_minor": True}, someextension="x")
    )
    assert decode_data(event, DESIGN_APPROVED).design_id == "d-1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({k: v for k, v in DESIGN.items() if k != "shop_id"}, "`$.data`"),
        ({**DESIGN, "revision": "2"}, "`$.data.revision`"),
        ({**DESIGN, "revision": 0}, "`$.data.revision`"),
        ({**DESIGN, "regions": [{"region": "front"}]}, "image_id"),
        (
            {
                **DESIGN,
                "regions": [
                    {"region": "front", "image_id": "i", "placement_strategy": "PLACEMENT_ID"}
                ],
            },
            "placement_id",
        ),
        (
            {
                **DESIGN,
                "regions": [
                    {"region": "front", "image_id": "i", "placement_strategy": "SOMEWHERE"}
                ],
            },
            "`$.data.regions[0]",
        ),
        ({**DESIGN, "regions": []}, "regions must not be empty"),
        ({**DESIGN, "product": {}}, "name"),
    ],
)
def test_schema_violations_name_the_field(data: object, needle: str) -> None:
    event = decode_structured(envelope(data))
    with pytest.raises(ContractError) as caught:
        decode_data(event, DESIGN_APPROVED)
    assert caught.value.reason == "schema_violation"
    assert needle in caught.value.detail


def test_customization_id_allows_no_regions() -> None:
    event = decode_structured(envelope({**DESIGN, "regions": [], "customization_id": "cst_1"}))
    assert decode_data(event, DESIGN_APPROVED).customization_id == "cst_1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b'{"hello": "world"}', "not_a_cloudevent"),
        (b"[]", "not_a_cloudevent"),
        (envelope(DESIGN, specversion="0.3"), "unsupported_specversion"),
    ],
)
def test_bad_envelopes_get_a_specific_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as caught:
        decode_structured(body)
    assert caught.value.reason == reason


def test_unknown_and_unexpected_types_are_told_apart() -> None:
    with pytest.raises(ContractError, match="unknown_type"):
        decode_data(
            decode_structured(envelope(DESIGN, type="merch.design.approved.v9")), DESIGN_APPROVED
        )
    with pytest.raises(ContractError, match="unexpected_type"):
        decode_data(decode_structured(envelope(DESIGN)), PRODUCT_CREATED)


@pytest.mark.parametrize("prefix", ["cloudEvents_", "cloudEvents:"])
def test_binary_mode_reads_both_header_prefixes(prefix: str) -> None:
    headers = {
        f"{prefix}specversion": "1.0",
        f"{prefix}id": "e-2",
        f"{prefix}source": b"urn:x",
        f"{prefix}type": "merch.design.approved.v1",
        "unrelated": 1,
    }
    event = decode_binary(
        binary_attributes(headers), "application/json", msgspec.json.encode(DESIGN)
    )
    assert event.id == "e-2" and event.source == "urn:x"
    assert decode_data(event, DESIGN_APPROVED).shop_id == "shop-1"  # type: ignore[union-attr]


def test_binary_mode_rejects_non_json_data() -> None:
    attrs = {"specversion": "1.0", "id": "e", "source": "s", "type": "t"}
    with pytest.raises(ContractError, match="unsupported_content_type"):
        decode_binary(attrs, "text/plain", b"x")


def test_fourthwall_requests_are_camel_case_and_typed() -> None:
    body = msgspec.json.decode(
        msgspec.json.encode(
            CreateCustomizationProductRequestV1(
                customization_id="cst_1", name="Tee", profit_margin=10.0
            )
        )
    )
    assert body == {
        "type": CUSTOMIZATION_PRODUCT_TYPE,
        "customizationId": "cst_1",
        "name": "Tee",
        "profitMargin": 10.0,
    }
    assert CUSTOMIZATION_PRODUCT_TYPE == "customization"
    sketch = msgspec.json.decode(
        msgspec.json.encode(
            CreateCustomizationRequestV1(
                product_template_id="pro_tee",
                regions=[
                    ProductDesignRegionV1(
                        region="front", image_id="img_1", placement_strategy="FILL_ALL"
                    )
                ],
            )
        )
    )
    assert sketch == {
        "productTemplateId": "pro_tee",
        "regions": [{"region": "front", "imageId": "img_1", "placementStrategy": "FILL_ALL"}],
    }


def test_product_request_union_is_discriminated_by_type() -> None:
    decoded = msgspec.json.decode(
        b'{"type":"customization","customizationId":"c"}', type=CreateProductRequestV1
    )
    assert isinstance(decoded, CreateCustomizationProductRequestV1)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type":"customization"}', type=CreateProductRequestV1)


def test_customization_response_allows_null_pipeline() -> None:
    response = msgspec.json.decode(
        b'{"customizationId":"cst_1","pipelineId":null,"images":[],"newField":1}',
        type=CreateCustomizationResponseV1,
    )
    assert response.pipeline_id is None and response.images == []


def test_error_body_keeps_code_and_context() -> None:
    body = decode_error_body(b'{"code":"DESIGN_PIPELINE_INVALID_REGIONS","invalidRegions":["x"]}')
    assert body is not None
    assert body.code == "DESIGN_PIPELINE_INVALID_REGIONS"
    assert body.context == {"invalidRegions": ["x"]}
    assert decode_error_body(b"<html>") is None


def test_unknown_fields_are_found_at_any_depth_for_the_try_it_endpoint() -> None:
    data = {
        **DESIGN,
        "prodcut": {"name": "typo"},
        "product": {"name": "Tee", "nmae": "typo"},
        "regions": [
            {"region": "front", "image_id": "i"},
            {"region": "back", "image_id": "j", "x": 1},
        ],
        "recommendations": {"pin_on_items": ["/p/1"], "tgs": ["typo"]},
    }
    assert sorted(unknown_fields(msgspec.json.encode(data), DESIGN_APPROVED)) == [
        "$.data.prodcut",
        "$.data.product.nmae",
        "$.data.recommendations.tgs",
        "$.data.regions[1].x",
    ]
    assert unknown_fields(msgspec.json.encode(DESIGN), DESIGN_APPROVED) == []
