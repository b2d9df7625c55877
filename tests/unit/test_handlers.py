"""Handlers with fakes of their ports: what each outcome is, and that a redelivery resumes."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from consumers import design_approved, product_created
from consumers.outcomes import Defer, Done, Reject, Retry
from consumers.pin_rules import PinRules, fence_tag
from consumers.ports import (
    ArtworkSource,
    DesignKey,
    DesignRecord,
    MissingCredentials,
    UpstreamError,
)
from contracts.events import (
    DesignApprovedV1,
    DesignRegion,
    PinScope,
    PinsCreatedV1,
    ProductCreatedV1,
    ProductFailedV1,
    ProductSpec,
    ProductWithdrawnV1,
    Recommendations,
)
from tests.unit.fakes import (
    FakeFourthwall,
    FakeLedger,
    FakeLuigisBox,
    FakeQuota,
    delivery,
    upstream_error,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
KEY = DesignKey("shop-1", "d-1", 1)


def design(**overrides: object) -> DesignApprovedV1:
    fields: dict[str, object] = dict(
        shop_id="shop-1",
        design_id="d-1",
        product_template_id="pro_tee",
        regions=[DesignRegion(region="front", image_id="img_1")],
        product=ProductSpec(name="Tee", profit_margin=5.0),
        recommendations=Recommendations(pin_on_items=["/p/9"]),
    )
    fields.update(overrides)
    return DesignApprovedV1(**fields)  # type: ignore[arg-type]


def ports(
    fourthwall: FakeFourthwall,
    ledger: FakeLedger | None = None,
    quota: FakeQuota | None = None,
    artwork: ArtworkSource | None = None,
) -> design_approved.Ports:
    return design_approved.Ports(
        fourthwall=fourthwall,
        ledger=ledger or FakeLedger(),
        quota=quota or FakeQuota(),
        clock=lambda: NOW,
        artwork=artwork,
    )


async def test_customization_then_product_then_product_created() -> None:
    fourthwall, ledger = FakeFourthwall(), FakeLedger()
    outcome = await design_approved.handle(design(), delivery(), ports=ports(fourthwall, ledger))
    assert isinstance(outcome, Done)
    assert fourthwall.customizations[0].product_template_id == "pro_tee"
    assert fourthwall.products[0].customization_id == "cst_1"
    assert fourthwall.products[0].profit_margin == 5.0
    created = outcome.events[0].data
    assert isinstance(created, ProductCreatedV1)
    assert (created.product_id, created.customization_id) == ("prd_1", "cst_1")
    assert created.recommendations == Recommendations(pin_on_items=["/p/9"])
    assert ledger.records[KEY].state == "product_created"
    assert not ledger.leases  # released


async def test_every_heavy_call_is_reported_finished_answer_or_error() -> None:
    quota = FakeQuota()
    await design_approved.handle(design(), delivery(), ports=ports(FakeFourthwall(), quota=quota))
    assert quota.finished_calls == ["call-1", "call-2"]  # customization, then product
    failing = FakeFourthwall(fail_product=upstream_error("SERVICE_UNAVAILABLE", True, 503))
    quota = FakeQuota()
    outcome = await design_approved.handle(design(), delivery(), ports=ports(failing, quota=quota))
    assert isinstance(outcome, Retry) and quota.finished_calls == ["call-1", "call-2"]


async def test_event_with_customization_id_makes_one_call() -> None:
    fourthwall = FakeFourthwall()
    outcome = await design_approved.handle(
        design(customization_id="cst_given", regions=[]), delivery(), ports=ports(fourthwall)
    )
    assert isinstance(outcome, Done)
    assert fourthwall.customizations == []
    assert fourthwall.products[0].customization_id == "cst_given"


async def test_redelivery_after_success_republishes_without_calling_fourthwall() -> None:
    ledger = FakeLedger()
    first = await design_approved.handle(
        design(), delivery(), ports=ports(FakeFourthwall(), ledger)
    )
    again = FakeFourthwall()
    second = await design_approved.handle(
        design(), delivery(2, token="t-2"), ports=ports(again, ledger)
    )
    assert isinstance(first, Done) and isinstance(second, Done)
    assert second.events == first.events  # same data, same event id
    assert again.customizations == [] and again.products == []


async def test_retry_after_a_product_error_reuses_the_recorded_customization() -> None:
    ledger = FakeLedger()
    flaky = FakeFourthwall(fail_product=upstream_error("SQL_CONSTRAINTS_ERROR", True, 409))
    assert isinstance(
        await design_approved.handle(design(), delivery(), ports=ports(flaky, ledger)), Retry
    )
    healthy = FakeFourthwall()
    outcome = await design_approved.handle(
        design(), delivery(2, token="t-2"), ports=ports(healthy, ledger)
    )
    assert isinstance(outcome, Done)
    assert healthy.customizations == []  # not repeated
    assert healthy.products[0].customization_id == "cst_1"


def answer_lost() -> FakeFourthwall:
    """Fourthwall makes the product, but its answer never arrives."""
    return FakeFourthwall(
        fail_product_after_creating=UpstreamError(
            api="fourthwall", status=None, code="TIMEOUT", detail="ReadTimeout", retryable=True
        )
    )


def already_used() -> FakeFourthwall:
    return FakeFourthwall(fail_product=upstream_error("CUSTOMIZATION_ALREADY_USED_ERROR", False))


async def test_an_operators_retry_resumes_a_failed_design_from_its_last_good_step() -> None:
    ledger = FakeLedger()
    down = FakeFourthwall(fail_product=upstream_error("SERVICE_UNAVAILABLE", True, 503))
    failed = await design_approved.handle(
        design(), delivery(3, final=True), ports=ports(down, ledger)
    )
    assert isinstance(failed, Reject) and ledger.records[KEY].state == "failed"

    healthy = FakeFourthwall()
    again = await design_approved.handle(
        design(), delivery(token="t-2"), ports=ports(healthy, ledger)
    )
    assert isinstance(again, Reject) and healthy.products == []  # a plain redelivery: no

    retried = await design_approved.handle(
        design(), delivery(token="t-3", retry_by="ops-bob"), ports=ports(healthy, ledger)
    )
    assert isinstance(retried, Done)
    assert healthy.customizations == []  # the recorded customization is reused
    assert healthy.products[0].customization_id == "cst_1"
    assert ledger.records[KEY].state == "product_created"


async def test_an_operators_retry_does_not_reopen_a_design_needing_reconciliation() -> None:
    ledger = FakeLedger()
    lost = answer_lost()
    await design_approved.handle(design(), delivery(), ports=ports(lost, ledger))
    used = already_used()
    await design_approved.handle(design(), delivery(2, token="t-2"), ports=ports(used, ledger))
    healthy = FakeFourthwall()
    outcome = await design_approved.handle(
        design(), delivery(token="t-3", retry_by="ops-bob"), ports=ports(healthy, ledger)
    )
    assert isinstance(outcome, Reject) and healthy.products == []
    assert ledger.records[KEY].state == "needs_reconciliation"


async def test_lost_answer_then_already_used_needs_reconciliation_not_a_second_product() -> None:
    ledger = FakeLedger()
    lost = answer_lost()
    assert isinstance(
        await design_approved.handle(design(), delivery(), ports=ports(lost, ledger)), Retry
    )
    used = already_used()
    outcome = await design_approved.handle(
        design(), delivery(2, token="t-2"), ports=ports(used, ledger)
    )
    assert isinstance(outcome, Reject)
    assert outcome.code == "CUSTOMIZATION_ALREADY_USED_ERROR"
    assert ledger.records[KEY].state == "needs_reconciliation"
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1) and not failed.retryable


async def test_producer_customization_already_used_elsewhere_is_a_plain_failure() -> None:
    ledger = FakeLedger()
    used = already_used()
    outcome = await design_approved.handle(
        design(customization_id="cst_x", regions=[]), delivery(), ports=ports(used, ledger)
    )
    assert isinstance(outcome, Reject)
    assert ledger.records[KEY].state == "failed"


async def test_a_design_held_by_another_delivery_is_deferred() -> None:
    ledger = FakeLedger()
    ledger.leases[KEY] = "someone-else"
    fourthwall = FakeFourthwall()
    outcome = await design_approved.handle(design(), delivery(), ports=ports(fourthwall, ledger))
    assert isinstance(outcome, Defer)
    assert fourthwall.customizations == []


async def test_permanent_fourthwall_error_rejects_with_product_failed() -> None:
    fourthwall = FakeFourthwall(
        fail_customization=upstream_error("DESIGN_PIPELINE_INVALID_REGIONS", retryable=False)
    )
    ledger = FakeLedger()
    outcome = await design_approved.handle(design(), delivery(2), ports=ports(fourthwall, ledger))
    assert isinstance(outcome, Reject) and not outcome.exhausted
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1)
    assert (failed.stage, failed.code, failed.retryable, failed.attempts) == (
        "customization",
        "DESIGN_PIPELINE_INVALID_REGIONS",
        False,
        2,
    )
    # a redelivery republishes the same failure without calling Fourthwall again
    again = await design_approved.handle(
        design(), delivery(3, token="t-3"), ports=ports(FakeFourthwall(), ledger)
    )
    assert isinstance(again, Reject) and again.events == outcome.events


async def test_transient_error_retries_then_fails_retryable_on_the_last_attempt() -> None:
    error = upstream_error("SQL_CONSTRAINTS_ERROR", True, 409)
    outcome = await design_approved.handle(
        design(), delivery(), ports=ports(FakeFourthwall(fail_product=error))
    )
    assert isinstance(outcome, Retry) and outcome.stage == "product"
    last = await design_approved.handle(
        design(), delivery(5, final=True), ports=ports(FakeFourthwall(fail_product=error))
    )
    assert isinstance(last, Reject) and last.exhausted
    failed = last.events[0].data
    assert isinstance(failed, ProductFailedV1)
    assert (failed.retryable, failed.attempts, failed.code) == (True, 5, "SQL_CONSTRAINTS_ERROR")


async def test_missing_credentials_is_a_permanent_failure_with_a_clear_code() -> None:
    fourthwall = FakeFourthwall(fail_customization=MissingCredentials("fourthwall", "shop-1"))
    outcome = await design_approved.handle(design(), delivery(), ports=ports(fourthwall))
    assert isinstance(outcome, Reject) and outcome.code == "MISSING_CREDENTIALS"
    assert "shop-1" in outcome.detail


def product(pins: list[str]) -> ProductCreatedV1:
    return ProductCreatedV1(
        shop_id="shop-1",
        design_id="d-1",
        revision=1,
        customization_id="cst_1",
        product_id="prd_1",
        name="Tee",
        created_at="x",
        recommendations=Recommendations(pin_on_items=pins),
    )


def pin_ports(luigisbox: FakeLuigisBox, ledger: FakeLedger | None = None) -> product_created.Ports:
    return product_created.Ports(
        luigisbox=luigisbox,
        ledger=ledger or FakeLedger(),
        clock=lambda: NOW,
        rules=PinRules(position=3),
        identity_template_for={"shop-1": "/p/{product_id}"},
    )


async def test_pins_created_lists_every_scope() -> None:
    luigisbox = FakeLuigisBox()
    outcome = await product_created.handle(
        product(["/p/a", "/p/b"]), delivery(), ports=pin_ports(luigisbox)
    )
    assert isinstance(outcome, Done)
    pins = outcome.events[0].data
    assert isinstance(pins, PinsCreatedV1)
    assert [s.target_identity for s in pins.scopes] == ["/p/a", "/p/b"]
    assert {s.pin_identity for s in pins.scopes} == {"/p/prd_1"}
    assert luigisbox.scopes[0].pin_definitions[0].position == 3


async def test_scopes_already_recorded_are_not_created_again() -> None:
    ledger = FakeLedger()
    recorded = PinScope(
        scope_id="old-scope", model="basket", target_type="item", position=3, target_identity="/p/a"
    )
    ledger.scopes["prd_1"] = {"item:/p/a": msgspec.json.encode(recorded)}
    luigisbox = FakeLuigisBox()
    outcome = await product_created.handle(
        product(["/p/a", "/p/b"]), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(outcome, Done)
    assert [s.target_identity for s in luigisbox.scopes] == ["/p/b"]
    pins = outcome.events[0].data
    assert isinstance(pins, PinsCreatedV1)
    assert [s.scope_id for s in pins.scopes] == ["old-scope", "scope-1"]
    assert ledger.product_states["prd_1"] == "pins_created"


async def test_a_scope_whose_answer_was_lost_is_found_by_its_tag_not_created_twice() -> None:
    ledger = FakeLedger()
    lost = UpstreamError(
        api="luigisbox", status=None, code="TIMEOUT", detail="read timed out", retryable=True
    )
    luigisbox = FakeLuigisBox(fail_after_creating=lost)
    first = await product_created.handle(
        product(["/p/a"]), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(first, Retry) and len(luigisbox.scopes) == 1
    tag = fence_tag("prd_1", "item:/p/a")
    assert tag in (luigisbox.scopes[0].tags or [])  # the scope carries its fence tag
    luigisbox.fail_after_creating = None
    again = await product_created.handle(
        product(["/p/a"]), delivery(attempt=2, token="t-2"), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(again, Done) and len(luigisbox.scopes) == 1  # adopted, not created
    assert luigisbox.lookups == [tag]
    pins = again.events[0].data
    assert isinstance(pins, PinsCreatedV1) and [s.scope_id for s in pins.scopes] == ["scope-1"]


async def test_a_scope_asked_for_but_never_made_is_created_after_looking() -> None:
    ledger = FakeLedger()
    ledger.scopes_requested["prd_1"] = {"all"}  # the process died before the request left
    luigisbox = FakeLuigisBox()
    outcome = await product_created.handle(
        product([]), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(outcome, Done)
    assert luigisbox.lookups == [fence_tag("prd_1", "all")] and len(luigisbox.scopes) == 1


async def test_a_first_attempt_does_not_look_before_creating() -> None:
    luigisbox = FakeLuigisBox()
    ledger = FakeLedger()
    await product_created.handle(product(["/p/a"]), delivery(), ports=pin_ports(luigisbox, ledger))
    assert luigisbox.lookups == [] and ledger.scopes_requested["prd_1"] == {"item:/p/a"}


async def test_luigisbox_422_is_permanent_and_keeps_details() -> None:
    error = UpstreamError(
        api="luigisbox",
        status=422,
        code="LUIGISBOX_HTTP_422",
        detail="Invalid pin definition provided: position",
        retryable=False,
    )
    outcome = await product_created.handle(
        product([]), delivery(), ports=pin_ports(FakeLuigisBox(fail=error))
    )
    assert isinstance(outcome, Reject)
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1)
    assert failed.stage == "pins" and "position" in failed.detail


async def test_no_free_slot_defers_with_a_ticket_and_the_ticket_is_presented_later() -> None:
    fourthwall, ledger, quota = FakeFourthwall(), FakeLedger(), FakeQuota(free=0, wait_s=12.0)
    outcome = await design_approved.handle(
        design(), delivery(), ports=ports(fourthwall, ledger, quota)
    )
    assert outcome == Defer(reason="quota", delay_s=12.0, quota_ticket="planned")
    assert fourthwall.customizations == []
    # back at its slot: the ticket buys the customization call; the product call presents the
    # slot planned right after it (the pair), not a new one at the back of the shop's queue
    quota.free = 1
    done = await design_approved.handle(
        design(), delivery(token="t-2", ticket="due"), ports=ports(fourthwall, ledger, quota)
    )
    assert isinstance(done, Done)
    assert quota.taken == [None, "due", "due.then"]


async def test_a_design_with_a_customization_spends_one_slot() -> None:
    quota = FakeQuota()
    await design_approved.handle(
        design(customization_id="cst_given", regions=[]),
        delivery(),
        ports=ports(FakeFourthwall(), quota=quota),
    )
    assert quota.taken == [None]


async def test_a_failed_customization_frees_the_slot_planned_for_its_product() -> None:
    """Otherwise every failed attempt would hold a slot of the shop's quota for nothing."""
    quota = FakeQuota()
    error = UpstreamError(
        api="fourthwall", status=503, code="SERVICE_UNAVAILABLE", detail="", retryable=True
    )
    outcome = await design_approved.handle(
        design(), delivery(), ports=ports(FakeFourthwall(fail_customization=error), quota=quota)
    )
    assert isinstance(outcome, Retry)
    assert quota.cancelled == ["call-1.then"]


async def test_429_pushes_the_shop_back_and_is_not_a_failed_attempt() -> None:
    throttled = UpstreamError(
        api="fourthwall",
        status=429,
        code="OPEN_API_TOO_MANY_REQUESTS",
        detail="",
        retryable=True,
        retry_after_s=17.0,
    )
    quota, ledger = FakeQuota(), FakeLedger()
    outcome = await design_approved.handle(
        design(),
        delivery(final=True),
        ports=ports(FakeFourthwall(fail_customization=throttled), ledger, quota),
    )
    assert outcome == Defer(reason="throttled", delay_s=17.0)
    assert quota.throttles == [17.0]
    assert ledger.records[KEY].state == "received"  # nothing failed


async def test_luigisbox_429_waits_as_told() -> None:
    error = UpstreamError(
        api="luigisbox",
        status=429,
        code="LUIGISBOX_HTTP_429",
        detail="",
        retryable=True,
        retry_after_s=9.0,
    )
    outcome = await product_created.handle(
        product([]), delivery(), ports=pin_ports(FakeLuigisBox(fail=error))
    )
    assert outcome == Defer(reason="throttled", delay_s=9.0)


async def test_the_product_is_put_into_the_catalogue_before_its_first_scope() -> None:
    luigisbox = FakeLuigisBox()
    ledger = FakeLedger()
    outcome = await product_created.handle(
        product(["/p/a", "/p/b"]), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(outcome, Done)
    assert luigisbox.order == ["content", "scope", "scope"]
    item = luigisbox.content[0]
    pinned = {s.pin_definitions[0].pin_identity for s in luigisbox.scopes}
    assert (item.identity, item.type, item.fields["title"]) == ("/p/prd_1", "item", "Tee")
    assert pinned == {item.identity}  # the object is the item the scopes pin
    assert ledger.content["prd_1"] == "/p/prd_1"


async def test_a_product_already_in_the_catalogue_is_not_indexed_again() -> None:
    luigisbox = FakeLuigisBox()
    ledger = FakeLedger(content={"prd_1": "/p/prd_1"})
    outcome = await product_created.handle(
        product(["/p/a"]), delivery(), ports=pin_ports(luigisbox, ledger)
    )
    assert isinstance(outcome, Done) and luigisbox.order == ["scope"]


async def test_a_refused_content_object_fails_the_promotion_before_any_scope() -> None:
    refused = UpstreamError(
        api="luigisbox",
        status=400,
        code="LUIGISBOX_CONTENT_REJECTED",
        detail="/p/prd_1: incorrect object format",
        retryable=False,
    )
    luigisbox = FakeLuigisBox(fail_content=refused)
    outcome = await product_created.handle(
        product(["/p/a"]), delivery(), ports=pin_ports(luigisbox)
    )
    assert isinstance(outcome, Reject) and luigisbox.scopes == []
    failed = outcome.events[0].data
    assert isinstance(failed, ProductFailedV1)
    assert (failed.stage, failed.code) == ("pins", "LUIGISBOX_CONTENT_REJECTED")


async def test_a_transient_content_error_retries_and_a_throttled_one_waits() -> None:
    down = UpstreamError(
        api="luigisbox", status=503, code="LUIGISBOX_CONTENT_HTTP_503", detail="d", retryable=True
    )
    outcome = await product_created.handle(
        product([]), delivery(), ports=pin_ports(FakeLuigisBox(fail_content=down))
    )
    assert isinstance(outcome, Retry) and outcome.code == "LUIGISBOX_CONTENT_HTTP_503"
    slow = UpstreamError(
        api="luigisbox",
        status=429,
        code="LUIGISBOX_CONTENT_HTTP_429",
        detail="d",
        retryable=True,
        retry_after_s=7.0,
    )
    outcome = await product_created.handle(
        product([]), delivery(), ports=pin_ports(FakeLuigisBox(fail_content=slow))
    )
    assert isinstance(outcome, Defer) and outcome.delay_s == 7.0


def _superseding(
    luigisbox: FakeLuigisBox,
    ledger: FakeLedger,
    fourthwall: FakeFourthwall,
    keeps: frozenset[str] = frozenset(),
) -> product_created.Ports:
    return product_created.Ports(
        luigisbox=luigisbox,
        ledger=ledger,
        clock=lambda: NOW,
        rules=PinRules(position=3),
        identity_template_for={"shop-1": "/p/{product_id}"},
        fourthwall=fourthwall,
        keeps_revisions=keeps,
    )


def _revision(n: int, product_id: str) -> ProductCreatedV1:
    return msgspec.structs.replace(product(["/p/a"]), revision=n, product_id=product_id)


def _ledger_with(*products: tuple[int, str]) -> FakeLedger:
    ledger = FakeLedger()
    for n, product_id in products:
        key = DesignKey("shop-1", "d-1", n)
        ledger.records[key] = DesignRecord(key=key, state="published", product_id=product_id)
    return ledger


async def test_an_older_revision_approved_after_a_newer_one_changes_nothing() -> None:
    ledger = FakeLedger()
    newer = DesignKey("shop-1", "d-1", 3)
    ledger.records[newer] = DesignRecord(key=newer, state="published", product_id="prd_3")
    fourthwall, quota = FakeFourthwall(), FakeQuota()
    outcome = await design_approved.handle(
        design(revision=2), delivery(ticket="planned"), ports=ports(fourthwall, ledger, quota)
    )
    assert isinstance(outcome, Done) and outcome.events == [] and outcome.note
    assert "revision 2" in outcome.note and "revision 3" in outcome.note
    assert ledger.records[DesignKey("shop-1", "d-1", 2)].state == "superseded"
    assert fourthwall.customizations == [] and quota.cancelled == ["planned"]  # slot given back


async def test_a_newer_revision_is_promoted_then_the_older_product_retired() -> None:
    ledger = _ledger_with((1, "prd_1"), (2, "prd_2"))
    old_scope = PinScope(scope_id="scope-old", model="basket", target_type="item", position=3)
    ledger.scopes["prd_1"] = {"item:/p/a": msgspec.json.encode(old_scope)}
    ledger.content["prd_1"] = "/p/prd_1"
    luigisbox, fourthwall = FakeLuigisBox(), FakeFourthwall()
    outcome = await product_created.handle(
        _revision(2, "prd_2"), delivery(), ports=_superseding(luigisbox, ledger, fourthwall)
    )
    assert isinstance(outcome, Done)
    pins, withdrawn = (o.data for o in outcome.events)
    assert isinstance(pins, PinsCreatedV1) and pins.product_id == "prd_2"
    assert isinstance(withdrawn, ProductWithdrawnV1)
    assert (withdrawn.product_id, withdrawn.revision, withdrawn.reason) == (
        "prd_1",
        1,
        "superseded",
    )
    assert luigisbox.order == ["content", "scope"]  # the new product: indexed, then pinned
    assert (luigisbox.deleted, luigisbox.removed) == (["scope-old"], ["/p/prd_1"])
    assert fourthwall.states == {"prd_1": "HIDDEN"}
    assert ledger.product_states == {"prd_1": "superseded", "prd_2": "pins_created"}
    assert "prd_1" not in ledger.leases  # its lease given back


async def test_an_older_revisions_product_arriving_late_is_retired_not_promoted() -> None:
    ledger = _ledger_with((1, "prd_1"), (2, "prd_2"))
    luigisbox, fourthwall = FakeLuigisBox(), FakeFourthwall()
    outcome = await product_created.handle(
        _revision(1, "prd_1"), delivery(), ports=_superseding(luigisbox, ledger, fourthwall)
    )
    assert isinstance(outcome, Done)
    assert [type(o.data) for o in outcome.events] == [ProductWithdrawnV1]
    assert luigisbox.order == [] and fourthwall.states == {"prd_1": "HIDDEN"}
    assert ledger.product_states == {"prd_1": "superseded"}  # not overwritten by the release


async def test_a_shop_that_keeps_revisions_retires_nothing() -> None:
    ledger = _ledger_with((1, "prd_1"), (2, "prd_2"))
    luigisbox, fourthwall = FakeLuigisBox(), FakeFourthwall()
    keeps = frozenset({"shop-1"})
    outcome = await product_created.handle(
        _revision(2, "prd_2"), delivery(), ports=_superseding(luigisbox, ledger, fourthwall, keeps)
    )
    assert isinstance(outcome, Done) and len(outcome.events) == 1
    assert fourthwall.states == {} and luigisbox.deleted == []
