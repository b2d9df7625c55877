from __future__ import annotations

import pytest

from contracts.fourthwall import CUSTOMIZATION_ERRORS, PRODUCT_ERRORS
from service.upstreams.taxonomy import (
    FOURTHWALL_CODE,
    classify_fourthwall,
    classify_luigisbox,
)

TRANSIENT_CODES = {
    "SQL_CONSTRAINTS_ERROR",
    "OPEN_API_TOO_MANY_REQUESTS",
    "RENDERING_NOT_SCHEDULED_ERROR",
}
SEED_ROWS = sorted(
    {
        (status, code)
        for table in (CUSTOMIZATION_ERRORS, PRODUCT_ERRORS)
        for status, codes in table.items()
        for code in codes
    }
)


@pytest.mark.parametrize(("status", "code"), SEED_ROWS)
def test_every_seed_code_has_an_explicit_row(status: int, code: str) -> None:
    assert code in FOURTHWALL_CODE
    expected = "transient" if code in TRANSIENT_CODES else "permanent"
    assert classify_fourthwall(status, code) == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (406, "permanent"),
        (409, "transient"),
        (429, "transient"),
        (500, "transient"),
        (502, "transient"),
        (503, "transient"),
        (504, "transient"),
        (418, "permanent"),
        (599, "transient"),
    ],
)
def test_fourthwall_status_without_a_code(status: int, kind: str) -> None:
    assert classify_fourthwall(status, None) == kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "permanent"),
        (401, "permanent"),
        (404, "permanent"),
        (422, "permanent"),
        (429, "transient"),
        (500, "transient"),
        (503, "transient"),
    ],
)
def test_luigisbox_status(status: int, kind: str) -> None:
    assert classify_luigisbox(status) == kind
