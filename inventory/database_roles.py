"""The application's PostgreSQL role: what it may do to the tables, and nothing more.

In production the tables belong to an owner role that only migrations use; the application
connects as a role that owns nothing (docs/deployment.md). Not owning a table means it cannot
TRUNCATE, ALTER or DROP it, nor `ALTER TABLE … DISABLE TRIGGER` — so the ledger's append-only
trigger and the history tables' protection cannot be switched off from the application. On top of
that, the append-only tables (the ledger and the master-data history) are granted only SELECT and
INSERT: an UPDATE or DELETE fails on privileges before any trigger is even asked.
"""
from django.db import connections, transaction

from inventory.models import LotMovementLayer, Movement
from inventory.models.history import CHANGE_MODELS


def append_only_tables() -> list[str]:
    """The ledger (movements and the cost layers each lot movement drew) and every master-data history table."""
    return [Movement._meta.db_table, LotMovementLayer._meta.db_table,
            *sorted(model._meta.db_table for model in CHANGE_MODELS)]


def grant_app_privileges(*, role: str, using: str = "default") -> list[str]:
    """Give `role` read and write on every table of the schema, read and insert only on the
    append-only tables, use of the sequences; the same for tables the connected role (the owner)
    creates later. Idempotent: it first takes back whatever the role held. Returns the statements."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise ValueError("Database roles exist on PostgreSQL only.")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        owner, schema = cursor.fetchone()
    if role == owner:
        raise ValueError(
            f"The application would connect as {role!r}, the role running this, which owns the tables. "
            "Give the application its own role (DATABASE_URL) and run this as the owner (DATABASE_MIGRATE_URL)."
        )
    who, where = quote(role), quote(schema)
    protected = ", ".join(quote(table) for table in append_only_tables())
    statements = [
        f"GRANT USAGE ON SCHEMA {where} TO {who}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {where} TO {who}",
        f"REVOKE UPDATE, DELETE ON {protected} FROM {who}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}",
        # Tables and sequences that later migrations create (as the owner running this).
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {where} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {who}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {where} GRANT USAGE, SELECT ON SEQUENCES TO {who}",
    ]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return statements
