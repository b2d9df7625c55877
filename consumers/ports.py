"""What a handler needs from the world, as Protocols, and the errors those ports raise."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

import msgspec

from contracts.fourthwall import (
    CreateCustomizationProductRequestV1,
    CreateCustomizationRequestV1,
    CreateCustomizationResponseV1,
    CreateProductResponseV1,
    MediaImageV1,
    ProductLifecycleState,
    ProductTemplateV1,
    ProductV1,
)
from contracts.luigisbox import ContentObject, ContentRef, ScopeRequest, ScopeResponse

Api = Literal["fourthwall", "luigisbox"]


class UpstreamError(Exception):
    """An upstream call failed. ``retryable`` comes from the error taxonomy table."""

    def __init__(
        self,
        *,
        api: Api,
        status: int | None,
        code: str,
        detail: str,
        retryable: bool,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{api} {status} {code}: {detail}")
        self.api = api
        self.status = status
        self.code = code
        self.detail = detail
        self.retryable = retryable
        self.retry_after_s = retry_after_s

    @property
    def throttled(self) -> bool:
        """A rate limit answer (429): wait and try again, it is not a failed attempt."""
        return self.status == 429


class MissingCredentials(Exception):
    """No credentials are configured for the shop (neither in CONFIG_FILE nor the environment)."""

    def __init__(self, api: Api, shop_id: str) -> None:
        super().__init__(f"no {api} credentials configured for shop {shop_id!r}")
        self.api = api
        self.shop_id = shop_id


class ArtworkError(Exception):
    """An artwork named by URL could not be had: ``code`` says why (``ARTWORK_*``)."""

    def __init__(self, code: str, detail: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.retryable = retryable


class Picture(msgspec.Struct, frozen=True, kw_only=True):
    """An artwork's bytes and what its header says they are."""

    data: bytes
    content_type: str  # image/png or image/jpeg
    extension: str  # png or jpg
    width: int
    height: int
    content_hash: str  # sha256 hex of ``data``


class ArtworkSource(Protocol):
    async def fetch(self, url: str) -> bytes:
        """The bytes at ``url`` (an allowed host, bounded in size), or ``ArtworkError``."""
        ...


class Fourthwall(Protocol):
    async def create_customization(
        self, shop_id: str, request: CreateCustomizationRequestV1
    ) -> CreateCustomizationResponseV1: ...

    async def create_product(
        self, shop_id: str, request: CreateCustomizationProductRequestV1
    ) -> CreateProductResponseV1: ...

    async def set_product_state(
        self, shop_id: str, product_id: str, state: ProductLifecycleState
    ) -> ProductV1:
        """PUBLIC ⇄ HIDDEN; idempotent."""
        ...

    async def product_template(self, shop_id: str, template_id: str) -> ProductTemplateV1:
        """The product template (a general call, not a heavy one; kept for a while)."""
        ...

    async def upload_image(self, shop_id: str, picture: Picture) -> MediaImageV1:
        """Into the shop's media library: upload URL, PUT, save (none of them heavy)."""
        ...


class LuigisBox(Protocol):
    async def create_scope(self, shop_id: str, request: ScopeRequest) -> ScopeResponse: ...

    async def create_scopes(self, shop_id: str, requests: list[ScopeRequest]) -> None:
        """Many scopes in one call ("Bulk Create Customizations", conflict_strategy ignore):
        its answer names no ids; ``scopes_tagged`` finds them."""
        ...

    async def scopes_tagged(self, shop_id: str, tag: str) -> list[ScopeResponse]:
        """Every scope carrying ``tag`` (the listing, page by page)."""
        ...

    async def find_scope(self, shop_id: str, tag: str) -> ScopeResponse | None:
        """The scope carrying ``tag``, if one exists (a request whose answer was lost)."""
        ...

    async def index_content(self, shop_id: str, item: ContentObject) -> None:
        """Put ``item`` into the shop's catalogue (a full replacement: doing it twice is
        harmless)."""
        ...

    async def delete_scope(self, shop_id: str, scope_id: str) -> bool:
        """Delete a pin scope; False if it was gone already."""
        ...

    async def update_content(self, shop_id: str, item: ContentObject) -> None:
        """ "Partial Content Update" (PATCH): only the fields given change."""
        ...

    async def remove_content(self, shop_id: str, refs: list[ContentRef]) -> None:
        """Take objects out of the shop's catalogue."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class LeaseLost(Exception):
    """Another delivery holds the design or product now; this one must not write."""


class LedgerUnavailable(Exception):
    """The ledger's database did not answer (refused, failing over, read-only, locked). The
    infrastructure's fault, never the design's: a handler lets it pass, and the consume loop
    hands the message back without spending an attempt."""


DesignState = Literal[
    "received",
    "customization_created",
    "product_created",
    "published",
    "failed",
    "needs_reconciliation",
    "superseded",  # an approval of a revision older than one recorded: nothing was done
    "withdrawn",  # the design (this revision) was withdrawn: nothing of it is promoted
]


class DesignKey(msgspec.Struct, frozen=True):
    shop_id: str
    design_id: str
    revision: int


class DesignRecord(msgspec.Struct, frozen=True, kw_only=True):
    key: DesignKey
    state: DesignState
    customization_id: str | None = None
    product_requested: bool = False
    product_id: str | None = None
    product_event: bytes | None = None  # the product.created data, as first published
    failed_event: bytes | None = None  # the product.failed data, as first published
    attempts: int = 0
    newest_revision: int | None = None  # the highest revision recorded for the design
    withdrawn: bool = False  # a withdrawal of the design covers this revision


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery of a message: its attempt number and a token that owns the lease."""

    attempt: int
    final: bool  # no attempt follows this one: a transient failure now is final
    token: str
    event_id: str
    quota_ticket: str | None = None  # a planned quota slot this message waited for
    # The CloudEvent as received (structured JSON): kept with the design so an operator can
    # run it again (admin retry) and rebuild what it would have produced (reconcile).
    cloud_event: bytes | None = None
    # An operator asked for this run (admin retry, dead-letter replay): a failed design resumes
    # from its last good step instead of being rejected again.
    retry_by: str | None = None


class DesignLedger(Protocol):
    """Durable progress of each design. Writes are fenced by the delivery's lease token."""

    async def claim(self, key: DesignKey, delivery: Delivery) -> DesignRecord | None:
        """The design's record, leased to ``delivery``; None while another delivery holds it."""
        ...

    async def record_withdrawn(self, key: DesignKey, token: str, detail: str) -> None:
        """The revision is withdrawn; its lease is released in the same statement."""
        ...

    async def record_customization(
        self, key: DesignKey, token: str, customization_id: str, *, product_requested: bool = False
    ) -> None:
        """The customization made; with ``product_requested``, also what
        ``record_product_requested(requested=True)`` records, in the same write."""
        ...

    async def record_product_requested(self, key: DesignKey, token: str, requested: bool) -> None:
        """Mark (or, when the call was not made after all, unmark) that POST /products may
        have reached Fourthwall for this design."""
        ...

    async def record_product(
        self, key: DesignKey, token: str, product_id: str, product_event: bytes
    ) -> None: ...

    async def record_error(
        self, key: DesignKey, token: str, *, stage: str, code: str, detail: str
    ) -> None:
        """A transient error: kept for the operator, the design stays where it was."""
        ...

    async def record_failed(
        self,
        key: DesignKey,
        token: str,
        *,
        state: DesignState,
        stage: str,
        code: str,
        detail: str,
        failed_event: bytes,
    ) -> None: ...

    async def record_superseded(self, key: DesignKey, token: str, newest: int) -> None:
        """The approval of an older revision than ``newest``: recorded, and nothing done."""
        ...

    async def reopen(self, key: DesignKey, token: str, operator: str) -> DesignRecord:
        """A failed design goes back to its last good step (its customization kept)."""
        ...

    async def release(self, key: DesignKey, token: str) -> None: ...

    async def uploaded_image(self, shop_id: str, content_hash: str) -> str | None:
        """The Fourthwall image id an artwork of this content became in this shop, if any."""
        ...

    async def record_uploaded_image(self, shop_id: str, content_hash: str, image_id: str) -> None:
        """Keep the image an artwork became (the first one recorded stays)."""
        ...


class ProductRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A product's pin scopes so far: recorded ones by rule key (the PinScope as published),
    and the rule keys whose scope was asked for (it may exist even if never recorded)."""

    scopes: dict[str, bytes] = {}
    requested: frozenset[str] = frozenset()
    indexed: str | None = None  # the catalogue identity, once its content object was put
    state: str = "pins_pending"  # pins_pending, pins_created, failed, superseded, withdrawn
    newest_revision: int | None = None  # the design's highest revision that has a product
    withdrawn: bool = False  # a withdrawal of the design covers the product's revision


class DesignProduct(msgspec.Struct, frozen=True, kw_only=True):
    """A product made for one revision of a design, as the ledger knows it."""

    revision: int
    product_id: str
    state: str | None  # the product's state (None before its promotion began)


class DesignRevision(msgspec.Struct, frozen=True, kw_only=True):
    """One revision of a design as the ledger knows it, and its product if it has one."""

    revision: int
    state: str
    product_id: str | None = None
    product_state: str | None = None


class ProductLedger(Protocol):
    async def claim_product(
        self, product_id: str, shop_id: str, design_id: str, token: str
    ) -> ProductRecord | None:
        """The product's scopes so far, leased to ``token``; None while another delivery
        holds the product."""
        ...

    async def record_content(
        self, product_id: str, token: str, identity: str, available: bool
    ) -> None:
        """The product's content object is in the catalogue under ``identity``."""
        ...

    async def design_products(self, shop_id: str, design_id: str) -> list[DesignProduct]:
        """Every product made for the design, by revision."""
        ...

    async def scope_ids(self, product_id: str) -> dict[str, str]:
        """The product's recorded scope ids by rule key."""
        ...

    async def record_retired(self, product_id: str, token: str, state: str) -> None:
        """The product is hidden, its scopes deleted and its object out of the catalogue."""
        ...

    async def record_scope_requested(self, product_id: str, token: str, rule_key: str) -> None:
        """Before the scope call: from now on, a retry looks for the scope before creating."""
        ...

    async def record_scope(
        self, product_id: str, token: str, rule_key: str, scope_id: str, scope: bytes
    ) -> None: ...

    async def finish_product(self, product_id: str, token: str, state: str | None) -> None:
        """Release the lease; with ``state``, record where the product ended."""
        ...


class WithdrawalLedger(ProductLedger, Protocol):
    """What a withdrawal needs of the ledger: its tombstone, the design's revisions, and each
    one's lease (an approval in flight holds it: the withdrawal waits its turn)."""

    async def record_withdrawal(
        self,
        shop_id: str,
        design_id: str,
        up_to_revision: int | None,
        reason: str | None,
        event_id: str,
    ) -> None:
        """The tombstone, widened (never narrowed) if the design has one."""
        ...

    async def revisions(self, shop_id: str, design_id: str) -> list[DesignRevision]: ...

    async def hold_revision(self, key: DesignKey, token: str) -> DesignRevision | None:
        """Lease a recorded revision to ``token`` and read it as it is now (an approval may
        have made its product since the revisions were listed); None while another delivery
        holds it."""
        ...

    async def record_withdrawn(self, key: DesignKey, token: str, detail: str) -> None:
        """The revision is withdrawn; its lease is released in the same statement."""
        ...

    async def release(self, key: DesignKey, token: str) -> None: ...


class OurProduct(msgspec.Struct, frozen=True, kw_only=True):
    """A product the ledger made, as a Fourthwall change needs it."""

    shop_id: str
    design_id: str
    revision: int
    last_change_at: float | None = None  # the newest Fourthwall change applied (its time)
    last_access: str | None = None  # and the visibility it left the product in


class UpstreamChange(msgspec.Struct, frozen=True, kw_only=True):
    """A Fourthwall change of one product, as applied (``fourthwall_changes``)."""

    changed_at: float
    access: str | None  # PUBLIC, HIDDEN, PRIVATE, ARCHIVED; None: not told (below)
    stock: str | None  # AVAILABLE, SOLD_OUT; None: not told
    name: str
    event_id: str


class ChangeLedger(ProductLedger, Protocol):
    async def our_product(self, product_id: str) -> OurProduct | None:
        """The design a product was made for; None for a product we did not make."""
        ...

    async def record_change(
        self, product_id: str, token: str, change: UpstreamChange, available: bool | None
    ) -> bool:
        """The change applied (and the catalogue object's availability, when given), written
        on the design's history too; False when a newer change was recorded meanwhile."""
        ...


class Slot(msgspec.Struct, frozen=True, kw_only=True):
    """The quota's answer: go now (``ticket`` names the call, for ``finished``), or come back
    in ``wait_s`` with ``ticket``. ``then`` is the ticket of the call planned right after this
    one for the same design (asked for with ``pair``): the product after its customization."""

    granted: bool
    wait_s: float = 0.0
    ticket: str | None = None
    then: str | None = None


class Quota(Protocol):
    """The shop's Fourthwall heavy-call quota, shared by every replica."""

    async def take(self, shop_id: str, ticket: str | None, *, pair: bool = False) -> Slot:
        """A slot for one heavy call; with ``pair``, a first request also plans the slot of the
        design's next call right after it, so a shop's backlog finishes designs in order."""
        ...

    async def finished(self, shop_id: str, slot: Slot) -> None:
        """The granted call's answer (or error) has arrived: it stops counting as in flight.
        A call never finished (the process died) counts until its grant + the HTTP timeout."""
        ...

    async def throttled(self, shop_id: str, retry_after_s: float | None) -> float:
        """Fourthwall answered 429 anyway: push the shop's next slot back; returns the wait."""
        ...

    async def cancel(self, shop_id: str, ticket: str | None) -> None:
        """A planned slot will not be used (the design's first call failed): free it."""
        ...
