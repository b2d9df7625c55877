"""``/admin/failures``: failed designs grouped by ``{stage}.{code}`` (a design and its dead
letter one member), dead letters that are no design grouped of their own, and a group retried
page by page, with a dry run first, on both ledgers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aio_pika
import httpx
import msgspec
import pytest

from contracts.events import DesignApprovedV1, DesignRegion
from contracts.fourthwall import PRODUCTS_PATH
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import load_settings
from service.testing.broker import Seen, publish, watching
from service.testing.inprocess import running_service
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-the-failure-groups"
UNAVAILABLE = "product.SERVICE_UNAVAILABLE"
INVALID = "customization.DESIGN_PIPELINE_INVALID_REGIONS"


def _bad_regions(shop: str, n: int) -> DesignApprovedV1:
    design = sample_design(shop, n, "groups-bad")
    return msgspec.structs.replace(
        design, regions=[DesignRegion(region="nowhere", image_id="img_front_1")]
    )


def _of(ids: set[str]) -> Callable[[Seen], bool]:
    return lambda seen: getattr(seen.data, "design_id", None) in ids


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, service_env: dict[str, str]
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield service_env["DATABASE_URL"]
        return
    async with throwaway_postgres() as url:
        yield url


async def test_failures_are_grouped_by_cause_and_a_group_is_retried_page_by_page(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str, database_url: str
) -> None:
    # two attempts: each shop's heavy calls stay inside Fourthwall's 5 a minute
    env = {**service_env, "ADMIN_TOKEN": TOKEN, "DATABASE_URL": database_url, "MAX_ATTEMPTS": "2"}
    settings = load_settings(env)
    transient = [sample_design(shop, 0, "groups") for shop in ("shop-1", "shop-2", "shop-3")]
    invalid = [_bad_regions("shop-1", 0), _bad_regions("shop-2", 0)]
    ids = {d.design_id for d in transient}
    await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[PRODUCTS_PATH])
    async with (
        watching(amqp_url) as watcher,
        running_service(settings),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Operator": "ops-ann"},
        ) as admin,
    ):
        for design in transient + invalid:
            await publish(amqp_url, event_message(design_event(design)))
        await publish(amqp_url, aio_pika.Message(b'{"not": "a cloudevent"', message_id="junk-1"))
        await watcher.wait_for("product.failed", 5)
        report = (await admin.get("/admin/failures")).json()
        groups = {g["signature"]: g for g in report["groups"]}
        assert set(groups) == {UNAVAILABLE, INVALID, "dead_letter.invalid_json"}, groups
        assert (groups[UNAVAILABLE]["count"], groups[UNAVAILABLE]["shops_affected"]) == (3, 3)
        assert groups[UNAVAILABLE]["shops"] == ["shop-1", "shop-2", "shop-3"]
        assert groups[UNAVAILABLE]["states"] == {"failed": 3}
        assert groups[INVALID]["count"] == 2  # each design once, not again for its dead letter
        assert "nowhere" in groups[INVALID]["sample_detail"]
        junk = groups["dead_letter.invalid_json"]
        assert (junk["kind"], junk["count"], junk["queues"]) == (
            "dead_letter",
            1,
            ["design-approved"],
        )
        assert report["dead_letters_scanned"] == 6  # 5 designs' and the junk's

        # a dry run says what would happen and does nothing
        preview = await admin.post(
            f"/admin/failures/{UNAVAILABLE}/retry", params={"dry_run": "true", "limit": 2}
        )
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["dry_run"] and [m["outcome"] for m in body["members"]] == ["requeued"] * 2
        assert body["next_cursor"]
        assert (await admin.get("/admin/failures")).json()["groups"][0]["count"] == 3

        # the outage is over: the group, a page of two and then the rest
        await sandbox.set_faults()
        first = (
            await admin.post(f"/admin/failures/{UNAVAILABLE}/retry", params={"limit": 2})
        ).json()
        rest = (
            await admin.post(
                f"/admin/failures/{UNAVAILABLE}/retry",
                params={"limit": 2, "cursor": first["next_cursor"]},
            )
        ).json()
        members = first["members"] + rest["members"]
        assert [m["outcome"] for m in members] == ["requeued"] * 3 and rest["next_cursor"] is None
        await watcher.wait_for("pins.created", 3, where=_of(ids))
        after = {g["signature"]: g for g in (await admin.get("/admin/failures")).json()["groups"]}
        assert UNAVAILABLE not in after and after[INVALID]["count"] == 2

        # a shop filter; a dead-letter group replays its dead letters (a dry run here)
        shop = (
            await admin.post(
                f"/admin/failures/{INVALID}/retry", params={"shop_id": "shop-2", "dry_run": "true"}
            )
        ).json()
        assert [m["shop_id"] for m in shop["members"]] == ["shop-2"]
        letters = (
            await admin.post(
                "/admin/failures/dead_letter.invalid_json/retry", params={"dry_run": "true"}
            )
        ).json()
        peeked = (await admin.get("/admin/dead-letters/design-approved/messages")).json()
        (junk_id,) = [d["id"] for d in peeked if d["message_id"] == "junk-1"]
        assert [(m["outcome"], m["queue"], m["dead_letter_id"]) for m in letters["members"]] == [
            ("replayed", "design-approved", junk_id)
        ]
        replayed = (await admin.post("/admin/failures/dead_letter.invalid_json/retry")).json()
        assert [(m["outcome"], m["dead_letter_id"]) for m in replayed["members"]] == [
            ("replayed", junk_id)
        ]
        # bad and unknown signatures
        assert (await admin.post("/admin/failures/no-dot/retry")).status_code == 400
        missing = await admin.post(f"/admin/failures/{UNAVAILABLE}/retry")
        assert missing.status_code == 404 and UNAVAILABLE in missing.json()["detail"]
        metrics = (await admin.get("/metrics")).text
    assert 'merch_admin_actions_total{action="failures.retry"} 3.0' in metrics
