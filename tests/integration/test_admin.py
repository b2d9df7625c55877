"""The admin API on both ledger backends: auth, designs, quota, consumers, problem details."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import msgspec
import pytest

from consumers.ports import DesignKey
from contracts.events import DesignApprovedV1, DesignRegion
from contracts.fourthwall import CUSTOMIZATIONS_PATH, PRODUCTS_PATH
from service.broker.codec import event_message
from service.design_refs import design_ref
from service.samples import design_event, sample_design
from service.settings import CONSUMERS, Settings, load_settings
from service.testing.broker import Seen, publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
async def admin(
    request: pytest.FixtureRequest,
    service_env: dict[str, str],
    sandbox: SandboxHandle,
    amqp_url: str,
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    async def run(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
        settings = load_settings(
            {**service_env, "ADMIN_TOKEN": TOKEN, "DATABASE_URL": database_url}
        )
        designs = [sample_design("shop-1", n, "adm") for n in range(3)]
        broken = sample_design("shop-2", 0, "adm")
        broken = type(broken)(
            **{
                **{f: getattr(broken, f) for f in broken.__struct_fields__},
                "regions": [DesignRegion(region="front", image_id="img_missing_x")],
            }
        )
        async with watching(amqp_url) as watcher, running_service(settings):
            for design in designs[:2]:  # two per shop: inside the quota
                await publish(amqp_url, event_message(design_event(design)))
            await publish(amqp_url, event_message(design_event(broken)))
            await watcher.wait_for("pins.created", 2)
            await watcher.wait_for("product.failed", 1)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.http_port}",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as http:
                yield http

    if request.param == "sqlite":
        async for client in run(service_env["DATABASE_URL"]):
            yield client
        return
    async with throwaway_postgres() as url:
        async for client in run(url):
            yield client


async def test_auth_is_required_and_compared(admin: httpx.AsyncClient) -> None:
    url = str(admin.base_url) + "/admin/designs"
    async with httpx.AsyncClient() as anonymous:
        missing = await anonymous.get(url)
        wrong = await anonymous.get(url, headers={"Authorization": "Bearer not-the-token"})
    assert (missing.status_code, wrong.status_code) == (401, 403)
    for response in (missing, wrong):
        assert response.headers["content-type"].startswith("application/problem+json")
        assert TOKEN not in response.text
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await admin.get("/admin/designs")).status_code == 200
    assert (await admin.get("/health/ready")).status_code == 200  # health stays open


async def test_designs_filter_and_paginate(admin: httpx.AsyncClient) -> None:
    everything = (await admin.get("/admin/designs")).json()
    assert len(everything["items"]) == 3 and everything["next_cursor"] is None
    failed = (await admin.get("/admin/designs", params={"state": "failed"})).json()["items"]
    assert [(d["shop_id"], d["last_code"]) for d in failed] == [
        ("shop-2", "MEDIA_FILE_DO_NOT_EXISTS")
    ]
    shop = (await admin.get("/admin/designs", params={"shop_id": "shop-1"})).json()["items"]
    assert {d["state"] for d in shop} == {"published"}
    first = (await admin.get("/admin/designs", params={"limit": 2})).json()
    second = (
        await admin.get("/admin/designs", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    seen = [d["design_id"] for d in first["items"] + second["items"]]
    assert seen == [d["design_id"] for d in everything["items"]] and second["next_cursor"] is None
    bad = await admin.get("/admin/designs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["status"] == 400


async def test_one_design_shows_every_step(admin: httpx.AsyncClient) -> None:
    design_id = (await admin.get("/admin/designs", params={"shop_id": "shop-1"})).json()["items"][
        0
    ]["design_id"]
    detail = (await admin.get(f"/admin/designs/shop-1:{design_id}:1")).json()
    assert detail["design"]["product_id"].startswith("prd_")
    assert [s["step"] for s in detail["steps"]] == [
        "received",
        "customization_created",
        "product_requested",
        "product_created",
        "published",
    ]

    # and its product as Luigi's Box has it: the catalogue object, then the pin scopes
    async def promoted() -> dict[str, Any] | None:
        product = (await admin.get(f"/admin/designs/shop-1:{design_id}:1")).json()["product"]
        return product if product and product["state"] == "pins_created" else None

    product = await eventually(promoted, what="the product pinned")
    assert product["product_id"] == detail["design"]["product_id"]
    assert product["content"]["identity"] == product["product_id"]  # the default template
    assert product["content"]["removed_at"] is None and product["scopes"]
    missing = await admin.get("/admin/designs/shop-1:nope:1")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


async def test_quota_and_consumers(admin: httpx.AsyncClient) -> None:
    quota = (await admin.get("/admin/shops/shop-1/quota")).json()
    assert (quota["heavy_calls"], quota["heavy_window_s"], quota["calls_in_window"]) == (5, 60.0, 4)
    consumers = (await admin.get("/admin/consumers")).json()
    assert {c["name"] for c in consumers} == set(CONSUMERS)
    assert all(c["attached"] for c in consumers)


async def test_without_admin_token_the_admin_routes_are_off(
    settings: Settings, sandbox: SandboxHandle
) -> None:
    url = f"http://127.0.0.1:{settings.http_port}/admin/designs"
    async with running_service(settings), httpx.AsyncClient() as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


async def test_pause_stops_a_consumer_and_resume_restarts_it(
    admin: httpx.AsyncClient, amqp_url: str
) -> None:
    paused = await admin.post(
        "/admin/consumers/design-approved/pause", headers={"X-Operator": "ops-alice"}
    )
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert (await admin.get("/health/ready")).status_code == 200  # paused on purpose: ready
    design = sample_design("shop-3", 0, "paused")
    async with watching(amqp_url) as watcher:
        await publish(amqp_url, event_message(design_event(design)))
        with pytest.raises(AssertionError):  # nothing is consumed while paused
            await watcher.wait_for("product.created", 1, timeout=1.5)
        resumed = await admin.post("/admin/consumers/design-approved/resume")
        assert resumed.json()["paused"] is False
        created = await watcher.wait_for("product.created", 1)
    assert created[0].data.design_id == design.design_id  # type: ignore[union-attr]
    unknown = await admin.post("/admin/consumers/nope/pause")
    assert unknown.status_code == 404


async def test_publish_validates_then_publishes(admin: httpx.AsyncClient, amqp_url: str) -> None:
    event = msgspec.json.encode(design_event(sample_design("shop-3", 1, "admin-publish")))
    async with watching(amqp_url) as watcher:
        accepted = await admin.post("/admin/events/design-approved", content=event)
        assert accepted.status_code == 202, accepted.text
        await watcher.wait_for("product.created", 1)
    doc = msgspec.json.decode(event)
    doc["data"]["revision"] = "two"
    refused = await admin.post("/admin/events/design-approved", content=msgspec.json.encode(doc))
    assert refused.status_code == 400
    assert "$.data.revision" in refused.json()["detail"]
    doc["data"]["revision"] = 2
    doc["data"]["product"]["nmae"] = "a typo a consumer would drop"
    typo = await admin.post("/admin/events/design-approved", content=msgspec.json.encode(doc))
    assert typo.status_code == 400 and "$.data.product.nmae" in typo.json()["detail"]


async def test_a_design_whose_ids_hold_any_character_is_found_and_addressed(
    admin: httpx.AsyncClient,
) -> None:
    odd = "dsg:1/2%3F ü"  # a colon, a slash, a percent sign, a space and unicode
    design = msgspec.structs.replace(sample_design("shop-3", 0, "odd"), design_id=odd)
    accepted = await admin.post(
        "/admin/events/design-approved", content=msgspec.json.encode(design_event(design))
    )
    assert accepted.status_code == 202, accepted.text

    async def published() -> dict[str, Any] | None:
        page = (await admin.get("/admin/designs", params={"design_id": odd})).json()
        items = [i for i in page["items"] if i["state"] == "published"]
        return items[0] if items else None

    listed = await eventually(published, what="the odd design published")
    assert listed["ref"].startswith("~") and listed["link"] == f"/admin/designs/{listed['ref']}"
    detail = await admin.get(listed["link"])
    assert detail.status_code == 200
    assert (detail.json()["design"]["design_id"], detail.json()["design"]["ref"]) == (
        odd,
        listed["ref"],
    )
    assert "published" in [s["step"] for s in detail.json()["steps"]]
    # the actions address it too: a published design is neither retried nor reconciled
    retried = await admin.post(f"{listed['link']}/retry")
    reconciled = await admin.post(f"{listed['link']}/reconcile", json={"product_id": "prd_x"})
    assert (retried.status_code, reconciled.status_code) == (409, 409)
    assert listed["ref"] in retried.json()["detail"]  # what to do names it the same way
    missing = await admin.get("/admin/designs/~" + "W10")  # base64url of "[]": names nothing
    assert missing.status_code == 400 and missing.json()["type"].endswith("invalid-request")


ODD_ID = "dsg:7/8%2F ☃ ü"  # a colon, a slash, a percent sign, a space and unicode


def _named(design: DesignApprovedV1, design_id: str | None) -> DesignApprovedV1:
    return msgspec.structs.replace(design, design_id=design_id) if design_id else design


def _of(design_id: str) -> Callable[[Seen], bool]:
    return lambda seen: getattr(seen.data, "design_id", None) == design_id


@pytest.mark.parametrize("design_id", [None, ODD_ID], ids=["plain", "odd"])
async def test_a_failed_design_is_retried_from_its_last_good_step(
    admin: httpx.AsyncClient, sandbox: SandboxHandle, amqp_url: str, design_id: str | None
) -> None:
    design = _named(sample_design("shop-3", 0, "retry"), design_id)
    ref = design_ref(DesignKey("shop-3", design.design_id, design.revision))
    await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[PRODUCTS_PATH])
    async with watching(amqp_url) as watcher:
        await publish(amqp_url, event_message(design_event(design)))
        await watcher.wait_for("product.failed", 1, where=_of(design.design_id))
        failed = (await admin.get(f"/admin/designs/{ref}")).json()["design"]
        assert (failed["state"], failed["last_code"]) == ("failed", "SERVICE_UNAVAILABLE")
        assert failed["customization_id"]  # the last good step
        await sandbox.set_faults()  # the outage is over
        retried = await admin.post(f"/admin/designs/{ref}/retry", headers={"X-Operator": "ops-bob"})
        assert retried.status_code == 202, retried.text
        assert retried.json()["action"] == "requeued"
        await watcher.wait_for("pins.created", 1, where=_of(design.design_id))
    detail = (await admin.get(f"/admin/designs/{ref}")).json()
    assert detail["design"]["state"] == "published"
    steps = [(s["step"], s["detail"]) for s in detail["steps"]]
    assert ("retry_requested", "by ops-bob") in steps
    assert [s for s, _ in steps].count("customization_created") == 1
    made = [c for c in (await sandbox.records())["customizations"].values()]
    assert sum(1 for c in made if c["shop_id"] == "shop-3") == 1  # not made a second time
    again = await admin.post(f"/admin/designs/{ref}/retry")
    assert again.status_code == 409 and "published" in again.json()["detail"]
    assert (await admin.post("/admin/designs/shop-3:nope:1/retry")).status_code == 404


@pytest.mark.parametrize("design_id", [None, ODD_ID], ids=["plain", "odd"])
async def test_a_design_needing_reconciliation_is_reconciled_and_gets_its_pins(
    admin: httpx.AsyncClient, sandbox: SandboxHandle, amqp_url: str, design_id: str | None
) -> None:
    design = _named(sample_design("shop-3", 0, "reconcile"), design_id)
    ref = design_ref(DesignKey("shop-3", design.design_id, design.revision))
    # Fourthwall makes the product but its answer never arrives; the next call is refused.
    await sandbox.set_faults(lost_answer_rate=1.0, endpoints=[PRODUCTS_PATH])
    async with watching(amqp_url) as watcher:
        await publish(amqp_url, event_message(design_event(design)))
        await watcher.wait_for("product.failed", 1, where=_of(design.design_id))
        await sandbox.set_faults()
        row = (await admin.get(f"/admin/designs/{ref}")).json()["design"]
        assert row["state"] == "needs_reconciliation"
        refused = await admin.post(f"/admin/designs/{ref}/retry")
        assert refused.status_code == 409 and "reconcile" in refused.json()["detail"]
        products = (await sandbox.records())["products"]
        [product_id] = [
            pid for pid, p in products.items() if p["customization_id"] == row["customization_id"]
        ]
        unknown_field = await admin.post(
            f"/admin/designs/{ref}/reconcile", json={"product_id": product_id, "note": "x"}
        )
        assert unknown_field.status_code == 400
        assert unknown_field.headers["content-type"].startswith("application/problem+json")
        done = await admin.post(
            f"/admin/designs/{ref}/reconcile",
            json={"product_id": product_id},
            headers={"X-Operator": "ops-dana"},
        )
        assert done.status_code == 200, done.text
        [pins] = await watcher.wait_for("pins.created", 1, where=_of(design.design_id))
    assert pins.data.product_id == product_id  # type: ignore[union-attr]
    detail = done.json()
    assert (detail["design"]["state"], detail["design"]["product_id"]) == ("published", product_id)
    assert ("reconciled", f"product {product_id}, by ops-dana") in [
        (s["step"], s["detail"]) for s in detail["steps"]
    ]
    other = await admin.post(f"/admin/designs/{ref}/reconcile", json={"product_id": "prd_other"})
    assert other.status_code == 409 and product_id in other.json()["detail"]
    assert len((await sandbox.records())["products"]) == len(products)  # no second product


async def _depth(admin: httpx.AsyncClient, count: int) -> bool:
    queues = (await admin.get("/admin/dead-letters")).json()
    return {q["consumer"]: q["messages"] for q in queues}["design-approved"] == count


async def test_dead_letters_are_peeked_replayed_discarded_and_purged(
    admin: httpx.AsyncClient, sandbox: SandboxHandle, amqp_url: str
) -> None:
    # Dead already: the fixture's design with a missing image. Add a body that is not JSON and
    # a design that ran out of attempts while Fourthwall's customizations were down.
    outage = sample_design("shop-3", 0, "outage")
    await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[CUSTOMIZATIONS_PATH])
    async with watching(amqp_url) as watcher:
        await publish(amqp_url, aio_pika.Message(b"\xff\xfe\x00 not json", message_id="junk-1"))
        await publish(amqp_url, event_message(design_event(outage)))
        await watcher.wait_for("product.failed", 1, where=_of(outage.design_id))
        await eventually(lambda: _depth(admin, 3), what="3 dead letters")
        metrics = (await admin.get("/metrics")).text
        assert (
            'merch_dead_letter_messages{queue="merch-pipeline.design-approved.dead-letter"} 3.0'
            in metrics
        )
        peeked = (await admin.get("/admin/dead-letters/design-approved/messages")).json()
        by_code = {p["code"]: p for p in peeked}
        assert set(by_code) == {"MEDIA_FILE_DO_NOT_EXISTS", "SERVICE_UNAVAILABLE", "invalid_json"}
        junk, dead = by_code["invalid_json"], by_code["SERVICE_UNAVAILABLE"]
        assert junk["body"]["encoding"] == "base64" and junk["id"]
        assert (dead["reason"], dead["attempts"]) == ("attempts_exhausted", 3)
        assert dead["body"]["encoding"] == "json"
        assert dead["body"]["content"]["data"]["design_id"] == outage.design_id
        again = (await admin.get("/admin/dead-letters/design-approved/messages")).json()
        assert sorted(p["id"] for p in again) == sorted(p["id"] for p in peeked)  # left in place

        await sandbox.set_faults()  # the outage is over: replay the design that ran out
        replayed = await admin.post(
            f"/admin/dead-letters/design-approved/messages/{dead['id']}/replay",
            headers={"X-Operator": "ops-carol"},
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {
            "queue": "merch-pipeline.design-approved.dead-letter",
            "to": "merch-pipeline.design-approved",
            "replayed": [dead["id"]],
        }
        await watcher.wait_for("pins.created", 1, where=_of(outage.design_id))
    ref = f"shop-3:{outage.design_id}:{outage.revision}"
    detail = (await admin.get(f"/admin/designs/{ref}")).json()
    assert detail["design"]["state"] == "published"
    assert ("retry_requested", "by ops-carol") in [
        (s["step"], s["detail"]) for s in detail["steps"]
    ]
    await eventually(lambda: _depth(admin, 2), what="2 dead letters")
    gone = await admin.post(f"/admin/dead-letters/design-approved/messages/{dead['id']}/replay")
    assert gone.status_code == 404

    # Replaying all sends both back; each fails again and is dead-lettered again.
    everything = (await admin.post("/admin/dead-letters/design-approved/replay")).json()
    assert sorted(everything["replayed"]) == sorted(
        [junk["id"], by_code["MEDIA_FILE_DO_NOT_EXISTS"]["id"]]
    )
    await eventually(lambda: _depth(admin, 2), what="both back in the dead-letter queue")
    fresh = (await admin.get("/admin/dead-letters/design-approved/messages")).json()
    junk_now = next(p for p in fresh if p["message_id"] == "junk-1")
    dropped = await admin.delete(f"/admin/dead-letters/design-approved/messages/{junk_now['id']}")
    assert dropped.json() == {
        "queue": "merch-pipeline.design-approved.dead-letter",
        "discarded": 1,
    }
    purged = await admin.delete("/admin/dead-letters/design-approved/messages")
    assert purged.json()["discarded"] == 1
    await eventually(lambda: _depth(admin, 0), what="an empty dead-letter queue")
    metrics = (await admin.get("/metrics")).text
    for action, count in (("dead_letters.replay", 2), ("dead_letters.discard", 1)):
        assert f'merch_admin_actions_total{{action="{action}"}} {count}.0' in metrics
    assert (await admin.get("/admin/dead-letters/nope/messages")).status_code == 404


async def test_a_design_waiting_for_its_quota_is_shown_parked_with_its_planned_time(
    admin: httpx.AsyncClient, amqp_url: str
) -> None:
    waiting = sample_design("shop-1", 7, "adm-parked")  # shop-1 has 1 of its 5 calls left
    await publish(amqp_url, event_message(design_event(waiting)))
    ref = f"/admin/designs/shop-1:{waiting.design_id}:1"

    async def parked() -> list[dict[str, Any]] | None:
        answer = await admin.get(ref)
        return answer.json()["parked"] if answer.status_code == 200 else None

    (spot,) = await eventually(parked, what="the design parked")
    assert spot["reason"] == "quota" and spot["due_at"] > time.time() + 30  # the next window
    assert (await admin.get(ref)).json()["design"]["state"] == "customization_created"
    quota = (await admin.get("/admin/shops/shop-1/quota")).json()
    assert quota["parked"] == 1 and quota["next_release_at"] == spot["due_at"]
