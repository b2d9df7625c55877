"""How a Fourthwall product change is read: visibility (``access``) and stock apart, and a change
published by the previous version (only ``state``) read by what its value is."""

from __future__ import annotations

import pytest

from consumers.fourthwall_changes import axes
from contracts.events import FourthwallProductChangedV1


def _change(
    state: str, access: str | None = None, stock: str | None = None
) -> FourthwallProductChangedV1:
    return FourthwallProductChangedV1(
        shop_id="shop-1",
        product_id="prd_1",
        fourthwall_event_id="weve_1",
        fourthwall_type="PRODUCT_UPDATED",
        name="Tee",
        state=state,
        changed_at="2026-12-05T12:00:00Z",
        access=access,
        stock=stock,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_change("PUBLIC", "PUBLIC", "SOLD_OUT"), ("PUBLIC", "SOLD_OUT")),
        (_change("PRIVATE", "PRIVATE", "AVAILABLE"), ("PRIVATE", "AVAILABLE")),
        # the previous version's events: `state` held whatever it read
        (_change("HIDDEN"), ("HIDDEN", None)),
        (_change("ARCHIVED"), ("ARCHIVED", None)),
        (_change("SOLD_OUT"), (None, "SOLD_OUT")),
        (_change("AVAILABLE"), (None, "AVAILABLE")),
        (_change("SOMETHING_NEW"), (None, None)),
    ],
)
def test_each_change_is_read_as_visibility_and_stock(
    change: FourthwallProductChangedV1, expected: tuple[str | None, str | None]
) -> None:
    assert axes(change) == expected
