"""The console's sessions, server-side in the ledger's database (``console_sessions``).

A session is opened by a login with the admin token and ends at logout, at its expiry
(``CONSOLE_SESSION_TTL_S``), or when ``ADMIN_TOKEN`` changes: each row carries a mark of the
token it was opened with (an HMAC, never the token), and a session whose mark is not the
current token's is no session. Every replica reads the same table, so a logout on one ends the
session on all. The cookie's value is a random 256-bit id; the table keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

import msgspec

from service.secrets import Secret
from service.store.database import Database

COOKIE = "mp_console"


class Session(msgspec.Struct, frozen=True, kw_only=True):
    operator: str
    csrf: str  # the token every state-changing form of this session carries
    expires_at: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def token_mark(token: Secret) -> str:
    """What a session remembers of the admin token: enough to tell it changed, nothing more."""
    return hmac.new(
        token.reveal().encode(), b"merch-pipeline console session", "sha256"
    ).hexdigest()


class ConsoleSessions:
    def __init__(
        self,
        db: Database,
        token: Secret,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.token = token
        self.ttl_s = ttl_s
        self.clock = clock

    async def open(self, operator: str) -> tuple[str, Session]:
        """A new session for ``operator``: the cookie's value and the session."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(
            operator=operator, csrf=secrets.token_urlsafe(32), expires_at=now + self.ttl_s
        )
        await self.db.execute(
            "INSERT INTO console_sessions (id_hash, operator, csrf, token_mark, created_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                _hash(session_id),
                operator,
                session.csrf,
                token_mark(self.token),
                now,
                session.expires_at,
            ),
        )
        await self.db.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
        return session_id, session

    async def find(self, session_id: str | None) -> Session | None:
        """The live session a cookie names, or None (unknown, ended, expired, other token)."""
        if not session_id or len(session_id) > 128:
            return None
        row = await self.db.fetchone(
            "SELECT operator, csrf, token_mark, expires_at FROM console_sessions WHERE id_hash = ?",
            (_hash(session_id),),
        )
        if row is None or float(row[3]) <= self.clock():
            return None
        if not hmac.compare_digest(str(row[2]), token_mark(self.token)):
            return None
        return Session(operator=str(row[0]), csrf=str(row[1]), expires_at=float(row[3]))

    async def close(self, session_id: str | None) -> None:
        if session_id:
            await self.db.execute(
                "DELETE FROM console_sessions WHERE id_hash = ?", (_hash(session_id),)
            )
