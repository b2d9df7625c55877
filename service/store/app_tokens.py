"""Fourthwall app tokens in the ledger's database (table ``fourthwall_app_tokens``, migration
16): one row per shop, shared by every replica.

Every change is one conditional statement, atomic on SQLite and PostgreSQL alike. A refresh is
claimed by bumping the row's ``fence`` while no lease is held; what the refresh learnt is
written only while the fence is still the one claimed, so a refresher whose lease ran out (a
stalled process) cannot overwrite a newer token or refresh token with an older one.
"""

from __future__ import annotations

import hashlib

import msgspec

from service.store.database import Database

_COLUMNS = (
    "refresh_token, access_token, expires_at, refresh_after, fence, lease_until, "
    "refused_reason, refused_at"
)


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    refresh_token: str
    access_token: str | None
    expires_at: float
    refresh_after: float
    fence: int
    lease_until: float | None
    refused_reason: str | None
    refused_at: float | None


class AppGrantState(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator sees of one shop's app grant (never a token)."""

    shop_id: str
    state: str  # active | paused | pending (no access token yet, or one refused with a 401)
    refreshed_at: float | None
    expires_at: float | None
    refused_reason: str | None
    refused_at: float | None


def seed_hash(refresh_token: str) -> str:
    """Names a configured refresh token without keeping it twice (it is one already stored
    in ``refresh_token`` until the first rotation)."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _row(values: tuple[object, ...] | None) -> TokenRow | None:
    if values is None:
        return None
    names = [n.strip() for n in _COLUMNS.split(",")]
    return msgspec.convert(dict(zip(names, values, strict=True)), TokenRow)


class AppTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def read(self, shop_id: str) -> TokenRow | None:
        return _row(
            await self._db.fetchone(
                f"SELECT {_COLUMNS} FROM fourthwall_app_tokens WHERE shop_id = ?", (shop_id,)
            )
        )

    async def seed(self, shop_id: str, refresh_token: str, now: float) -> None:
        """The configured refresh token: the row's start, and a new start (the refusal
        lifted, the tokens forgotten) when it is not the one the row started from (the app
        installed again)."""
        digest = seed_hash(refresh_token)
        await self._db.execute(
            "INSERT INTO fourthwall_app_tokens (shop_id, seed_hash, refresh_token, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (shop_id) DO NOTHING",
            (shop_id, digest, refresh_token, now),
        )
        await self._db.execute(
            "UPDATE fourthwall_app_tokens SET seed_hash = ?, refresh_token = ?, "
            "access_token = NULL, expires_at = 0, refresh_after = 0, fence = fence + 1, "
            "lease_until = NULL, refused_reason = NULL, refused_at = NULL, updated_at = ? "
            "WHERE shop_id = ? AND seed_hash <> ?",
            (digest, refresh_token, now, shop_id, digest),
        )

    async def claim(self, shop_id: str, now: float, lease_s: float) -> tuple[int, str] | None:
        """The right to refresh (the new fence and the refresh token to use), when the token
        is due, the grant not refused and no one else's lease alive."""
        row = await self._db.fetchone(
            "UPDATE fourthwall_app_tokens SET fence = fence + 1, lease_until = ?, updated_at = ? "
            "WHERE shop_id = ? AND refused_at IS NULL AND refresh_after <= ? "
            "AND (lease_until IS NULL OR lease_until < ?) RETURNING fence, refresh_token",
            (now + lease_s, now, shop_id, now, now),
        )
        return (int(row[0]), str(row[1])) if row else None

    async def store(
        self,
        shop_id: str,
        fence: int,
        *,
        access_token: str,
        refresh_token: str,
        expires_at: float,
        refresh_after: float,
        now: float,
    ) -> bool:
        return bool(
            await self._db.execute(
                "UPDATE fourthwall_app_tokens SET access_token = ?, refresh_token = ?, "
                "expires_at = ?, refresh_after = ?, lease_until = NULL, refreshed_at = ?, "
                "updated_at = ? WHERE shop_id = ? AND fence = ?",
                (access_token, refresh_token, expires_at, refresh_after, now, now, shop_id, fence),
            )
        )

    async def refuse(self, shop_id: str, fence: int, reason: str, now: float) -> bool:
        return bool(
            await self._db.execute(
                "UPDATE fourthwall_app_tokens SET refused_reason = ?, refused_at = ?, "
                "access_token = NULL, lease_until = NULL, updated_at = ? "
                "WHERE shop_id = ? AND fence = ?",
                (reason[:500], now, now, shop_id, fence),
            )
        )

    async def release(self, shop_id: str, fence: int, now: float) -> None:
        await self._db.execute(
            "UPDATE fourthwall_app_tokens SET lease_until = NULL, updated_at = ? "
            "WHERE shop_id = ? AND fence = ?",
            (now, shop_id, fence),
        )

    async def distrust(self, shop_id: str, access_token: str, now: float) -> None:
        """Fourthwall refused ``access_token`` (401): due now, unless it was replaced already."""
        await self._db.execute(
            "UPDATE fourthwall_app_tokens SET refresh_after = 0, expires_at = 0, updated_at = ? "
            "WHERE shop_id = ? AND access_token = ?",
            (now, shop_id, access_token),
        )

    async def grants(self) -> list[AppGrantState]:
        rows = await self._db.fetchall(
            "SELECT shop_id, access_token IS NOT NULL AND expires_at > 0, refreshed_at, "
            "expires_at, refused_reason, refused_at FROM fourthwall_app_tokens ORDER BY shop_id"
        )
        return [
            AppGrantState(
                shop_id=str(r[0]),
                state="paused" if r[5] is not None else "active" if r[1] else "pending",
                refreshed_at=r[2],
                expires_at=r[3] if r[1] else None,
                refused_reason=r[4],
                refused_at=r[5],
            )
            for r in rows
        ]

    async def refused(self) -> list[tuple[str, str, float]]:
        """Every paused shop: (shop, reason, when)."""
        rows = await self._db.fetchall(
            "SELECT shop_id, refused_reason, refused_at FROM fourthwall_app_tokens "
            "WHERE refused_at IS NOT NULL ORDER BY shop_id"
        )
        return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]
