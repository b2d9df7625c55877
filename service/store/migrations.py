"""Versioned schema migrations. Append a new version; never edit an applied one."""

from __future__ import annotations

from service.store.database import Database, Dialect

_MIGRATION_LOCK = 0x6D65726368  # advisory lock key for PostgreSQL ("merch")


def _v1(dialect: Dialect) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        """CREATE TABLE designs (
            shop_id TEXT NOT NULL,
            design_id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            state TEXT NOT NULL,
            event_id TEXT NOT NULL,
            correlation_id TEXT,
            customization_id TEXT,
            product_requested INTEGER NOT NULL DEFAULT 0,
            product_id TEXT,
            product_event TEXT,
            failed_event TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_stage TEXT,
            last_code TEXT,
            last_error TEXT,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (shop_id, design_id, revision)
        )""",
        "CREATE INDEX designs_state ON designs (state, updated_at)",
        "CREATE INDEX designs_product ON designs (product_id)",
        f"""CREATE TABLE design_steps (
            id {serial},
            shop_id TEXT NOT NULL,
            design_id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            step TEXT NOT NULL,
            code TEXT,
            detail TEXT,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX design_steps_design ON design_steps (shop_id, design_id, revision)",
        """CREATE TABLE products (
            product_id TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL,
            design_id TEXT NOT NULL,
            state TEXT NOT NULL,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE pin_scopes (
            product_id TEXT NOT NULL,
            rule_key TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (product_id, rule_key)
        )""",
    ]


def _v2(dialect: Dialect) -> list[str]:
    """The shared per-shop Fourthwall quota: calls made and slots planned, per shop."""
    return [
        """CREATE TABLE quota_shops (
            shop_id TEXT PRIMARY KEY,
            not_before DOUBLE PRECISION NOT NULL DEFAULT 0,
            throttled INTEGER NOT NULL DEFAULT 0,
            deferred INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE quota_slots (
            ticket TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            used INTEGER NOT NULL
        )""",
        "CREATE INDEX quota_slots_shop ON quota_slots (shop_id, at)",
    ]


def _v3(dialect: Dialect) -> list[str]:
    """Webhook deliveries by webhook-id: the ingress's idempotency record."""
    return [
        """CREATE TABLE webhook_deliveries (
            webhook_id TEXT PRIMARY KEY,
            producer TEXT NOT NULL,
            state TEXT NOT NULL,
            events INTEGER NOT NULL,
            received_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at)",
    ]


def _v4(dialect: Dialect) -> list[str]:
    """The design.approved CloudEvent as received, for the operator's retry and reconcile."""
    return ["ALTER TABLE designs ADD COLUMN design_event TEXT"]


def _v5(dialect: Dialect) -> list[str]:
    """``designs.correlation_id`` was created by v1 and never written: dropped. Versions before
    it never read it either, so a replica of the previous version keeps working meanwhile."""
    return ["ALTER TABLE designs DROP COLUMN correlation_id"]


def _v6(dialect: Dialect) -> list[str]:
    """One row per replica, written by the ledger probe while the database is thought away."""
    return [
        """CREATE TABLE ledger_heartbeat (
            replica TEXT PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL
        )"""
    ]


def _v7(dialect: Dialect) -> list[str]:
    """A pin scope asked for, before the call: a retry looks for it by its tag first."""
    return [
        """CREATE TABLE pin_scope_requests (
            product_id TEXT NOT NULL,
            rule_key TEXT NOT NULL,
            requested_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (product_id, rule_key)
        )"""
    ]


def _v8(dialect: Dialect) -> list[str]:
    """When a heavy call's answer arrived: the call counts against its shop's window from its
    grant until then (until grant + HTTP timeout while it is NULL)."""
    return ["ALTER TABLE quota_slots ADD COLUMN done_at DOUBLE PRECISION"]


def _v9(dialect: Dialect) -> list[str]:
    """Designs parked while they wait for their shop's quota: the message as it left its queue
    (bytes and properties), when it is due, and which replica is releasing it."""
    blob = "BLOB" if dialect == "sqlite" else "BYTEA"
    return [
        f"""CREATE TABLE parked_messages (
            id TEXT PRIMARY KEY,
            queue TEXT NOT NULL,
            shop_id TEXT NOT NULL,
            design_id TEXT NOT NULL,
            revision INTEGER NOT NULL,
            reason TEXT NOT NULL,
            due_at DOUBLE PRECISION NOT NULL,
            parked_at DOUBLE PRECISION NOT NULL,
            body {blob} NOT NULL,
            properties TEXT NOT NULL,
            claimed_by TEXT,
            claimed_until DOUBLE PRECISION
        )""",
        "CREATE INDEX parked_messages_due ON parked_messages (due_at)",
        "CREATE INDEX parked_messages_design ON parked_messages (shop_id, design_id, revision)",
    ]


def _v10(dialect: Dialect) -> list[str]:
    """Fewer statements per design: a design's steps are appended to ``designs.history`` in the
    same UPDATE that records them (``design_steps`` keeps the rows written before, and those the
    previous version writes during a rolling upgrade); ``products.claims`` counts claims, so a
    first claim skips looking for scopes no earlier attempt can have made; an index for the
    quota's decisions, whose cost then does not grow with a shop's backlog."""
    return [
        "ALTER TABLE designs ADD COLUMN history TEXT",
        "ALTER TABLE products ADD COLUMN claims INTEGER NOT NULL DEFAULT 0",
        # a quota decision reads a shop's calls made and its latest planned slots by range
        "CREATE INDEX quota_slots_open ON quota_slots (shop_id, used, at)",
    ]


def _v11(dialect: Dialect) -> list[str]:
    """A product's object in the shop's Luigi's Box catalogue: put there before its first pin
    scope (a product pinned by an earlier version has no row: ``backfill-content`` indexes it);
    ``removed_at`` is set when the object is taken out of the catalogue."""
    return [
        """CREATE TABLE product_content (
            product_id TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL,
            identity TEXT NOT NULL,
            available INTEGER NOT NULL,
            indexed_at DOUBLE PRECISION NOT NULL,
            removed_at DOUBLE PRECISION
        )""",
    ]


def _v12(dialect: str) -> list[str]:
    """Withdrawals: one tombstone per design, kept forever, so a withdrawal wins every race
    with its approvals (one still in a queue, parked, or not yet sent). ``up_to_revision``
    NULL withdraws every revision, any approved later included; else that one and every lower
    one. A later withdrawal widens it, never narrows it."""
    return [
        """CREATE TABLE design_withdrawals (
            shop_id TEXT NOT NULL,
            design_id TEXT NOT NULL,
            up_to_revision INTEGER,
            reason TEXT,
            event_id TEXT NOT NULL,
            withdrawn_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (shop_id, design_id)
        )""",
    ]


def _v13(dialect: str) -> list[str]:
    """Fourthwall's own product changes (its webhooks): the newest one applied per product, so
    an older change delivered later (or replayed) does not undo it."""
    return [
        """CREATE TABLE fourthwall_changes (
            product_id TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL,
            changed_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            name TEXT NOT NULL,
            event_id TEXT NOT NULL,
            applied_at DOUBLE PRECISION NOT NULL
        )""",
    ]


def _v14(dialect: str) -> list[str]:
    """The operator console's sessions, kept here so that a logout or a rotated ADMIN_TOKEN
    ends a session on every replica. ``id_hash`` is the SHA-256 of the cookie's value (the
    value itself is never stored); ``token_mark`` ties the session to the admin token it was
    opened with."""
    return [
        """CREATE TABLE console_sessions (
            id_hash TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            csrf TEXT NOT NULL,
            token_mark TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX console_sessions_expiry ON console_sessions (expires_at)",
    ]


def _v15(dialect: str) -> list[str]:
    """A Fourthwall product's two axes kept apart: ``access`` (visibility: PUBLIC, HIDDEN,
    PRIVATE, ARCHIVED) and ``stock`` (its ``state.type``: AVAILABLE, SOLD_OUT). Before, ``state``
    held one value read from the product's ``state.type``; each row's value moves to the column
    it belongs to. ``state`` stays (the visibility, as a replica of the previous version still
    writes and reads it during a rolling upgrade)."""
    return [
        "ALTER TABLE fourthwall_changes ADD COLUMN access TEXT",
        "ALTER TABLE fourthwall_changes ADD COLUMN stock TEXT",
        "UPDATE fourthwall_changes SET access = state "
        "WHERE state IN ('PUBLIC', 'HIDDEN', 'PRIVATE', 'ARCHIVED')",
        "UPDATE fourthwall_changes SET stock = state WHERE state IN ('AVAILABLE', 'SOLD_OUT')",
    ]


def _v16(dialect: str) -> list[str]:
    """Artwork a design named by URL, uploaded to a shop's Fourthwall media library: the image
    it became, by the SHA-256 of its bytes, so the same artwork is never uploaded twice."""
    return [
        """CREATE TABLE artwork_images (
            shop_id TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            image_id TEXT NOT NULL,
            uploaded_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (shop_id, content_hash)
        )""",
    ]


def _v17(dialect: str) -> list[str]:
    """Fourthwall app tokens (OAuth), one row per shop, shared by every replica
    (``service/store/app_tokens.py``): the current access token and when to refresh it, the
    refresh token as Fourthwall last rotated it, a lease with a fencing counter so one refresh
    per shop is in flight, and a refused grant's reason (the shop is paused until a new
    installation's refresh token is configured: ``seed_hash`` names the configured one).
    Self-contained: one table, nothing else touched."""
    return [
        """CREATE TABLE fourthwall_app_tokens (
            shop_id TEXT PRIMARY KEY,
            seed_hash TEXT NOT NULL,
            refresh_token TEXT NOT NULL,
            access_token TEXT,
            expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            refresh_after DOUBLE PRECISION NOT NULL DEFAULT 0,
            fence BIGINT NOT NULL DEFAULT 0,
            lease_until DOUBLE PRECISION,
            refused_reason TEXT,
            refused_at DOUBLE PRECISION,
            refreshed_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL
        )"""
    ]


MIGRATIONS = [
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
    (5, _v5),
    (6, _v6),
    (7, _v7),
    (8, _v8),
    (9, _v9),
    (10, _v10),
    (11, _v11),
    (12, _v12),
    (13, _v13),
    (14, _v14),
    (15, _v15),
    (16, _v16),
    (17, _v17),
]


LATEST = MIGRATIONS[-1][0]  # the schema version this release writes and reads


class SchemaMismatch(Exception):
    """The ledger's schema is not the one this release knows (MIGRATE_ON_START=false)."""

    def __init__(self, found: int, known: int) -> None:
        if found < known:
            why = (
                f"the ledger's schema is version {found}, older than this release's {known}: "
                "run `merch-pipeline migrate` (or start with MIGRATE_ON_START=true)"
            )
        else:
            why = (
                f"the ledger's schema is version {found}, newer than this release knows "
                f"({known}): a newer release migrated it; run that release or a newer one"
            )
        super().__init__(why)
        self.found = found
        self.known = known


async def check_schema(db: Database, known: int = LATEST) -> int:
    """The ledger's schema version, when it is exactly ``known``; else ``SchemaMismatch``."""
    found = await current_version(db)
    if found != known:
        raise SchemaMismatch(found, known)
    return found


async def current_version(db: Database) -> int:
    # Under the migration lock: PostgreSQL can fail two concurrent CREATE TABLE IF NOT EXISTS.
    await db.script(
        [
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        ],
        lock_key=_MIGRATION_LOCK,
    )
    row = await db.fetchone("SELECT MAX(version) FROM schema_migrations")
    return int(row[0]) if row and row[0] is not None else 0


async def migrate(db: Database, up_to: int | None = None) -> list[int]:
    """Apply every migration newer than the database (up to ``up_to``, to build a ledger of an
    earlier version); return the versions applied."""
    import time

    applied: list[int] = []
    for version, statements in MIGRATIONS:
        if version <= await current_version(db) or (up_to is not None and version > up_to):
            continue
        # The version row goes in with the schema change, in one transaction; a concurrent
        # migrator waits (advisory lock / SQLite's writer lock), re-checks, and skips.
        done = await db.script(
            [
                *statements(db.dialect),
                f"INSERT INTO schema_migrations (version, applied_at) VALUES ({version}, "
                f"{time.time()})",
            ],
            lock_key=_MIGRATION_LOCK,
            skip_if=f"SELECT COUNT(*) FROM schema_migrations WHERE version >= {version}",
        )
        if done:
            applied.append(version)
    return applied
