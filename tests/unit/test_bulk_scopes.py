"""A product pinned on many items: one bulk create and one listing by the product's tag
instead of a create each; what the listing does not show yet is looked for again before
anything is created one by one, so a lagging listing never makes a scope twice."""

from __future__ import annotations

from consumers import product_created
from consumers.outcomes import Defer, Done, Retry
from consumers.pin_rules import fence_tag, product_tag
from contracts.events import PinsCreatedV1
from tests.unit.fakes import FakeLedger, FakeLuigisBox, delivery, upstream_error
from tests.unit.test_handlers import pin_ports, product

ITEMS = [f"/p/{n}" for n in range(6)]


async def test_many_items_are_pinned_with_one_bulk_call_and_one_listing() -> None:
    luigisbox, ledger = FakeLuigisBox(), FakeLedger()
    outcome = await product_created.handle(
        product(ITEMS), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(outcome, Done)
    assert luigisbox.bulk_calls == 1 and luigisbox.order == ["content", "bulk"]
    assert luigisbox.lookups == [product_tag("prd_1")]  # one listing, no lookup per rule
    pins = outcome.events[0].data
    assert isinstance(pins, PinsCreatedV1)
    assert sorted(s.target_identity or "" for s in pins.scopes) == sorted(ITEMS)
    assert len({s.scope_id for s in pins.scopes}) == 6
    assert len(ledger.scopes["prd_1"]) == 6  # each recorded with its id
    tags = luigisbox.scopes[0].tags or []
    assert product_tag("prd_1") in tags and fence_tag("prd_1", f"item:{ITEMS[0]}") in tags


async def test_a_few_items_are_pinned_one_by_one() -> None:
    luigisbox = FakeLuigisBox()
    outcome = await product_created.handle(
        product(ITEMS[:4]), delivery(), ports=pin_ports(luigisbox)
    )
    assert isinstance(outcome, Done)
    assert luigisbox.bulk_calls == 0 and luigisbox.order == ["content"] + ["scope"] * 4


async def test_scopes_the_listing_does_not_show_yet_are_looked_for_again_not_made_twice() -> None:
    luigisbox, ledger = FakeLuigisBox(unlisted=1), FakeLedger()
    first = await product_created.handle(
        product(ITEMS), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(first, Defer) and first.reason == "scopes_settling"
    second = await product_created.handle(
        product(ITEMS), delivery(2, token="t-2"), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(second, Done)
    assert luigisbox.bulk_calls == 1 and len(luigisbox.scopes) == 6  # nothing made twice
    assert "scope" not in luigisbox.order


async def test_what_a_bulk_create_kept_out_is_made_one_by_one_after_a_second_look() -> None:
    luigisbox, ledger = FakeLuigisBox(conflicting={ITEMS[0]}), FakeLedger()
    first = await product_created.handle(
        product(ITEMS), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(first, Defer)
    assert len(ledger.scopes["prd_1"]) == 5  # what was found is kept
    second = await product_created.handle(
        product(ITEMS), delivery(2, token="t-2"), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(second, Done)
    assert luigisbox.order.count("scope") == 1 and luigisbox.scopes[-1].target_identity == ITEMS[0]
    assert fence_tag("prd_1", f"item:{ITEMS[0]}") in luigisbox.lookups  # looked for first


async def test_a_failed_bulk_call_is_retried_without_creating_anything_twice() -> None:
    luigisbox, ledger = (
        FakeLuigisBox(fail=upstream_error("LUIGISBOX_HTTP_503", True, 503)),
        FakeLedger(),
    )
    first = await product_created.handle(
        product(ITEMS), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(first, Retry) and luigisbox.scopes == []
    luigisbox.fail = None
    second = await product_created.handle(
        product(ITEMS), delivery(2, token="t-2"), ports=pin_ports(luigisbox, ledger)
    )
    # asked for before: looked up (nothing there), then made one by one, once each
    assert isinstance(second, Done) and len(luigisbox.scopes) == 6
