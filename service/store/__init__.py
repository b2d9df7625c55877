"""The ledger's storage: one SQL code path over SQLite (one replica) and PostgreSQL (several)."""
