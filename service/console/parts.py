"""What the console's pages and actions work with, built once by the composition root, and
the two things every handler does first: find the session, check a form's CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.params import SkipValidation

from service.api.admin.audit import Acting, Audit
from service.console.security import Forbidden, LoginAttempts, LoginNeeded, same
from service.console.sessions import COOKIE, ConsoleSessions, Session
from service.ledger_watch import LedgerWatch
from service.operations import Operations
from service.quota.store import QuotaStore, Unlimited
from service.secrets import Secret
from service.store.app_tokens import AppTokenStore
from service.store.ledger import Ledger
from service.store.parking import ParkingLot


@dataclass(frozen=True)
class ConsoleParts:
    token: Secret
    sessions: ConsoleSessions
    logins: LoginAttempts
    cookie_secure: bool  # CONSOLE_COOKIE_SECURE: Secure cookies even over plain http
    ledger: Ledger
    parking: ParkingLot
    quota: QuotaStore | Unlimited
    operations: Operations
    audit: Audit
    shops: tuple[str, ...]  # the configured shops, for the shops page
    ledger_watch: LedgerWatch | None = None
    app_grants: AppTokenStore | None = None  # with a Fourthwall app configured


# A handler's parameters: the request, and the parts (passed through, not validated: they
# are the service's own objects, not input).
Req = Request[Any, Any, Any]
Parts = SkipValidation[ConsoleParts]


async def session_of(parts: ConsoleParts, request: Request[Any, Any, Any]) -> Session:
    session = await parts.sessions.find(request.cookies.get(COOKIE))
    if session is None:
        raise LoginNeeded()
    return session


async def acting_session(parts: ConsoleParts, request: Request[Any, Any, Any]) -> Session:
    """The session of a state-changing request whose form carries its CSRF token (403 if not)."""
    session = await parts.sessions.find(request.cookies.get(COOKIE))
    if session is None:
        raise Forbidden()
    form = await request.form()
    given = form.get("csrf")
    if not same(given if isinstance(given, str) else None, session.csrf):
        raise Forbidden()
    return session


def acting_of(parts: ConsoleParts, session: Session) -> Acting:
    """The session's operator acting through the same operations and audit as the API's."""
    return Acting(session.operator, parts.operations, parts.audit, via="console")
