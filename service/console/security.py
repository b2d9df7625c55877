"""What keeps the console safe: its response headers (a Content-Security-Policy without inline
scripts, no framing), its cookies (HttpOnly, SameSite=Strict, Secure over https or when
``CONSOLE_COOKIE_SECURE``), the CSRF check of every state-changing form, and the limit on
failed logins per client address."""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie

PREFIX = "/admin/ui"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOGIN_COOKIE = "mp_console_login"  # the login form's CSRF token (double submit)


class LoginNeeded(Exception):
    """No live session: a page sends the browser to the login form."""


class Forbidden(Exception):
    """A state-changing request without this session's CSRF token."""


def secured(response: Response[Any]) -> Response[Any]:
    """Every console response carries the security headers."""
    response.headers.update(HEADERS)
    return response


def over_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def cookie(
    name: str, value: str, *, secure: bool, max_age: int | None, path: str = PREFIX
) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LoginAttempts:
    """Failed logins per client address in the last minute (per process)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._failed: dict[str, deque[float]] = {}

    def wait_s(self, address: str) -> float | None:
        """None while the address may try again, else the seconds until it may."""
        now = self.clock()
        failed = self._failed.get(address)
        if not failed:
            return None
        while failed and failed[0] <= now - 60.0:
            failed.popleft()
        if len(failed) < self.per_minute:
            return None
        return failed[0] + 60.0 - now

    def failed(self, address: str) -> None:
        self._failed.setdefault(address, deque()).append(self.clock())
        if len(self._failed) > 10_000:  # bounded: forget the stalest address
            self._failed.pop(next(iter(self._failed)))
