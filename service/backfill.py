"""``merch-pipeline backfill-content``: put the products an earlier version pinned into their
shops' Luigi's Box catalogues (the step that now comes before pinning), once each.

Each product's object is built from its recorded product.created event as the consumer builds
it, sent with a content update (a full replacement: running the command twice is harmless) and
recorded in the ledger, so a second run skips it. A product whose object is refused is reported
and left for the next run; a 429 waits as Luigi's Box says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from consumers.content import content_object, is_available
from consumers.ports import LuigisBox, MissingCredentials, UpstreamError
from contracts.events import ProductCreatedV1
from contracts.luigisbox import ContentObject
from service.store.ledger import Ledger

BATCH = 100
THROTTLED_TRIES = 5


@dataclass
class Backfilled:
    indexed: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # product_id → why


async def backfill_content(
    ledger: Ledger,
    luigisbox: LuigisBox,
    identity_template_for: Callable[[str], str],
    product_url_for: Callable[[str], str | None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Backfilled:
    done = Backfilled()
    after = ""
    while rows := await ledger.pinned_without_content(after, BATCH):
        for product_id, _design_id, event in rows:
            after = product_id
            product = msgspec.json.decode(event, type=ProductCreatedV1)
            shop = product.shop_id
            item = content_object(product, identity_template_for(shop), product_url_for(shop))
            why = await _index(luigisbox, shop, item, sleep)
            if why is not None:
                done.failed[product_id] = why
                continue
            available = is_available(item)
            await ledger.record_content_backfilled(product_id, shop, item.identity, available)
            done.indexed += 1
    return done


async def _index(
    luigisbox: LuigisBox,
    shop_id: str,
    item: ContentObject,
    sleep: Callable[[float], Awaitable[None]],
) -> str | None:
    """None once indexed, else why not."""
    for _ in range(THROTTLED_TRIES):
        try:
            await luigisbox.index_content(shop_id, item)
            return None
        except MissingCredentials as exc:
            return f"MISSING_CREDENTIALS: {exc}"
        except UpstreamError as exc:
            if not exc.throttled:
                return f"{exc.code}: {exc.detail}"
            await sleep(exc.retry_after_s or 1.0)
    return "LUIGISBOX_THROTTLED: still throttled, run again later"
