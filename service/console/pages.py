"""The console's pages (GET): failures, designs, dead letters, shops, consumers, and the login
form. Each reads what the admin API reads, through the same functions, and renders a template
(autoescaped: a value from a message or an upstream is shown as text)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from litestar import Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from consumers.ports import DesignKey
from service import failures
from service.api.admin.designs import design_detail
from service.broker import dead_letters
from service.broker.topology import QUEUES
from service.console.parts import ConsoleParts, Parts, Req, session_of
from service.console.security import LOGIN_COOKIE, PREFIX, cookie, over_https
from service.design_refs import design_key, design_ref
from service.errors import ActionError, Unavailable
from service.quota.store import QuotaStore
from service.store.ledger import DesignRow

PEEKED = 20  # dead letters shown per queue


def when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def console_ref(key: DesignKey) -> str:
    return f"{PREFIX}/designs/{design_ref(key)}"


def render(name: str, request: Req, **context: Any) -> Template:
    return Template(template_name=name, context={"prefix": PREFIX, "when": when, **context})


@get("/login", name="console-login-form", include_in_schema=False)
async def login_form(request: Req, console: Parts) -> Response[Any]:
    nonce = secrets.token_urlsafe(24)
    page = render("login.html", request, csrf=nonce, error=None, session=None)
    secure = console.cookie_secure or over_https(request)
    page.cookies.append(cookie(LOGIN_COOKIE, nonce, secure=secure, max_age=3600))
    return page


@get("/", name="console-home", include_in_schema=False)
async def home(request: Req, console: Parts) -> Redirect:
    await session_of(console, request)
    return Redirect(f"{PREFIX}/failures", status_code=303)


@get("/failures", name="console-failures", include_in_schema=False)
async def failures_page(request: Req, console: Parts) -> Template:
    session = await session_of(console, request)
    found = await failures.report(console.ledger, console.operations)
    return render(
        "failures.html",
        request,
        session=session,
        groups=found.groups,
        unread=found.dead_letters_unread,
    )


@get("/failures/{signature:str}/preview", name="console-preview", include_in_schema=False)
async def preview_page(request: Req, console: Parts, signature: FromPath[str]) -> Template:
    session = await session_of(console, request)
    members: list[failures.Member] = []
    error = None
    try:
        if signature.startswith(failures.DEAD_LETTER + "."):
            error = "a dead-letter group is replayed from the dead letters page"
        else:
            members, _ = await failures.retry_designs(
                console.ledger, signature, shop_id=None, after=None, limit=500, send=None
            )
    except ActionError as exc:
        error = exc.detail
    return render(
        "preview.html",
        request,
        session=session,
        signature=signature,
        members=members,
        error=error,
        done=False,
        more=False,
    )


@get("/designs", name="console-designs", include_in_schema=False)
async def designs_page(request: Req, console: Parts, q: FromQuery[str | None] = None) -> Template:
    session = await session_of(console, request)
    rows = await _search(console, (q or "").strip()[:256])
    found = [
        (row, console_ref(DesignKey(row.shop_id, row.design_id, row.revision))) for row in rows
    ]
    return render("designs.html", request, session=session, q=q or "", found=found)


async def _search(console: ConsoleParts, q: str) -> list[DesignRow]:
    """A design id, a product id or a shop id; without one, the latest failures."""
    if not q:
        return (await console.ledger.designs(state="failed", limit=50))[-50:]
    found = await console.ledger.designs(design_id=q, limit=50)
    product = await console.ledger.our_product(q)
    if product is not None:
        row = await console.ledger.design(
            DesignKey(product.shop_id, product.design_id, product.revision)
        )
        found += [row] if row is not None else []
    return found + await console.ledger.designs(shop_id=q, limit=50)


@get("/designs/{ref:str}", name="console-design", include_in_schema=False)
async def design_page(request: Req, console: Parts, ref: FromPath[str]) -> Template:
    session = await session_of(console, request)
    key = design_key(ref)
    detail = await design_detail(console.ledger, key, ref, console.parking)
    return render(
        "design.html",
        request,
        session=session,
        detail=detail,
        ref=ref,
        link=console_ref(key),
        events=await _events(console, key),
    )


async def _events(console: ConsoleParts, key: DesignKey) -> list[tuple[str, str]]:
    """The events the design sent, as first published (their data, as indented JSON)."""
    record = await console.ledger.record(key)
    if record is None:
        return []
    sent = [("product.created", record.product_event), ("product.failed", record.failed_event)]
    return [(name, _indented(data)) for name, data in sent if data]


def _indented(data: bytes) -> str:
    try:
        return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except ValueError:
        return data.decode(errors="replace")


@get("/dead-letters", name="console-dead-letters", include_in_schema=False)
async def dead_letters_page(request: Req, console: Parts) -> Template:
    session = await session_of(console, request)
    queues = []
    unread = None
    try:
        async with console.operations.broker_channel() as channel:
            for name, names in QUEUES.items():
                depth = await dead_letters.depth(channel, names)
                queues.append((name, depth, await dead_letters.peek(channel, names, PEEKED)))
    except Unavailable as exc:
        unread = str(exc)
    return render("dead_letters.html", request, session=session, queues=queues, unread=unread)


@get("/shops", name="console-shops", include_in_schema=False)
async def shops_page(request: Req, console: Parts) -> Template:
    session = await session_of(console, request)
    quota = console.quota if isinstance(console.quota, QuotaStore) else None
    states = [await quota.state(shop) for shop in console.shops] if quota else []
    grants = await console.app_grants.grants() if console.app_grants else []
    return render(
        "shops.html", request, session=session, states=states, limiter=bool(quota), grants=grants
    )


@get("/consumers", name="console-consumers", include_in_schema=False)
async def consumers_page(request: Req, console: Parts) -> Template:
    session = await session_of(console, request)
    watch = console.ledger_watch
    return render(
        "consumers.html",
        request,
        session=session,
        consumers=console.operations.consumers(),
        broker=console.operations.connected(),
        ledger_ok=watch.available if watch else True,
        ledger_error=watch.error if watch else None,
    )
