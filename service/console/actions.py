"""The console's actions (POST): log in and out, and what an operator fixes, each behind the
session's CSRF token and audit-logged under the session's operator like an admin API call."""

from __future__ import annotations

from typing import Any

from litestar import Response, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from service import failures, recovery
from service.api.admin.dead_letters import discard_dead_letter, replay_dead_letters
from service.broker import dead_letters
from service.console.pages import console_ref, render
from service.console.parts import Parts, Req, acting_of, acting_session
from service.console.security import LOGIN_COOKIE, PREFIX, Forbidden, cookie, over_https, same
from service.console.sessions import COOKIE, Session
from service.design_refs import design_key
from service.errors import ActionError, NotFound

OPERATOR_MAX = 80


@post("/login", name="console-login", include_in_schema=False, status_code=303)
async def login(request: Req, console: Parts) -> Response[Any]:
    form = await request.form()
    if not same(_text(form, "csrf"), request.cookies.get(LOGIN_COOKIE, "")):
        raise Forbidden()
    address = request.client.host if request.client else "unknown"
    wait = console.logins.wait_s(address)
    if wait is not None:
        page = render(
            "login.html",
            request,
            csrf=_text(form, "csrf"),
            session=None,
            error="Too many failed logins from this address; wait a minute.",
        )
        return _login_refused(page, 429, wait)
    operator = (_text(form, "operator") or "").strip()[:OPERATOR_MAX]
    if not operator or not same(_text(form, "token"), console.token.reveal()):
        console.logins.failed(address)
        page = render(
            "login.html",
            request,
            csrf=_text(form, "csrf"),
            session=None,
            error="Wrong token, or no operator name.",
        )
        return _login_refused(page, 401, None)
    session_id, _ = await console.sessions.open(operator)
    console.audit("console.login", operator)
    secure = console.cookie_secure or over_https(request)
    answer: Response[Any] = Redirect(f"{PREFIX}/failures", status_code=303)
    answer.cookies.append(
        cookie(COOKIE, session_id, secure=secure, max_age=int(console.sessions.ttl_s))
    )
    return answer


def _login_refused(page: Template, status: int, wait: float | None) -> Template:
    page.status_code = status
    if wait is not None:
        page.headers["Retry-After"] = str(max(1, int(wait) + 1))
    return page


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


@post("/logout", name="console-logout", include_in_schema=False, status_code=303)
async def logout(request: Req, console: Parts) -> Redirect:
    session = await acting_session(console, request)
    await console.sessions.close(request.cookies.get(COOKIE))
    console.audit("console.logout", session.operator)
    answer = Redirect(f"{PREFIX}/login", status_code=303)
    answer.cookies.append(
        cookie(COOKIE, "", secure=console.cookie_secure or over_https(request), max_age=0)
    )
    return answer


def _result(request: Req, session: Session, title: str, **context: Any) -> Template:
    return render("result.html", request, session=session, title=title, **context)


def _refused(
    request: Req, session: Session, title: str, exc: ActionError, **context: Any
) -> Template:
    """The page saying why an action was not done, with the status the API would answer."""
    page = _result(request, session, title, error=exc.detail, **context)
    page.status_code = exc.status
    return page


@post(
    "/failures/{signature:str}/retry",
    name="console-retry-group",
    include_in_schema=False,
    status_code=200,
)
async def retry_group(request: Req, console: Parts, signature: FromPath[str]) -> Template:
    session = await acting_session(console, request)
    acting = acting_of(console, session)
    send = failures.retry_sender(console.ledger, console.operations, session.operator)
    try:
        members, last = await failures.retry_designs(
            console.ledger, signature, shop_id=None, after=None, limit=500, send=send
        )
    except ActionError as exc:
        return _refused(request, session, f"Retry {signature}", exc)
    acting.done("failures.retry", signature=signature, outcomes=failures.tally(members))
    return render(
        "preview.html",
        request,
        session=session,
        signature=signature,
        members=members,
        error=None,
        done=True,
        more=last is not None,
    )


@post(
    "/designs/{ref:str}/retry",
    name="console-retry-design",
    include_in_schema=False,
    status_code=200,
)
async def retry_design(request: Req, console: Parts, ref: FromPath[str]) -> Template:
    session = await acting_session(console, request)
    key = design_key(ref)
    try:
        action = await recovery.retry_design(
            console.ledger,
            key,
            operator=session.operator,
            send=console.operations.send_design_to_queue,
        )
    except ActionError as exc:
        return _refused(request, session, f"Retry {ref}", exc, link=console_ref(key))
    acting_of(console, session).done("retry", design=ref, outcome=action)
    return _result(
        request, session, f"Retry {ref}", message=f"Design {ref}: {action}.", link=console_ref(key)
    )


@post(
    "/designs/{ref:str}/reconcile",
    name="console-reconcile",
    include_in_schema=False,
    status_code=200,
)
async def reconcile(request: Req, console: Parts, ref: FromPath[str]) -> Template:
    session = await acting_session(console, request)
    key = design_key(ref)
    product_id = (_text(await request.form(), "product_id") or "").strip()
    try:
        if not product_id or len(product_id) > 200:
            raise ActionError("product_id: the product Fourthwall holds (1 to 200 characters)")
        await recovery.reconcile_design(
            console.ledger,
            key,
            product_id,
            operator=session.operator,
            publish=console.operations.publish_event,
        )
    except ActionError as exc:
        return _refused(request, session, f"Reconcile {ref}", exc, link=console_ref(key))
    acting_of(console, session).done("reconcile", design=ref, product_id=product_id)
    return _result(
        request,
        session,
        f"Reconcile {ref}",
        message=f"Design {ref}: product {product_id} recorded.",
        link=console_ref(key),
    )


@post(
    "/dead-letters/{name:str}/{letter:str}/{verb:str}",
    name="console-dead-letter",
    include_in_schema=False,
    status_code=200,
)
async def dead_letter(
    request: Req,
    console: Parts,
    name: FromPath[str],
    letter: FromPath[str],
    verb: FromPath[str],
) -> Template:
    session = await acting_session(console, request)
    title = f"{verb.capitalize()} {letter}"
    back = f"{PREFIX}/dead-letters"
    acting = acting_of(console, session)
    try:
        if verb == "replay":
            await replay_dead_letters(acting, name, frozenset({letter}), dead_letters.MAX_SWEEP)
        elif verb == "discard":
            await discard_dead_letter(acting, name, letter)
        else:
            raise NotFound(f"no action {verb!r}: replay or discard")
    except ActionError as exc:
        return _refused(request, session, title, exc, back=back)
    done = "Replayed" if verb == "replay" else "Discarded"
    return _result(request, session, title, message=f"{done} {letter} ({name}).", back=back)


@post(
    "/consumers/{name:str}/{verb:str}",
    name="console-consumer",
    include_in_schema=False,
    status_code=303,
)
async def switch_consumer(
    request: Req, console: Parts, name: FromPath[str], verb: FromPath[str]
) -> Response[Any]:
    session = await acting_session(console, request)
    try:
        if verb == "pause":
            await console.operations.pause(name)
        elif verb == "resume":
            await console.operations.resume(name)
        else:
            raise NotFound(f"no action {verb!r}: pause or resume")
    except ActionError as exc:
        return _refused(request, session, f"{verb} {name}", exc, back=f"{PREFIX}/consumers")
    acting_of(console, session).done(verb, consumer=name)
    return Redirect(f"{PREFIX}/consumers", status_code=303)
