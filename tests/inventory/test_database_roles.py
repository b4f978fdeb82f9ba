"""The application's database role owns nothing: the ledger cannot be emptied or unprotected by it."""
import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connection, transaction

from inventory.models import Movement, Product
from tests.conftest import stock_units


def _execute(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def app_role() -> Iterator[str]:
    """A login role like production's application role, granted by the command as the owner would."""
    role = f"{connection.settings_dict['NAME']}_app"[:63]
    quoted = connection.ops.quote_name(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    call_command("grant_app_privileges", role=role, stdout=io.StringIO())
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {quoted}")
        cursor.execute(f"DROP ROLE {quoted}")


@contextmanager
def connected_as(role: str) -> Iterator[None]:
    """Reconnect the default database connection as `role` (the test server trusts local logins)."""
    settings_dict = connection.settings_dict
    original = settings_dict["USER"]
    connection.close()
    settings_dict["USER"] = role
    try:
        yield
    finally:
        connection.close()
        settings_dict["USER"] = original


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_application_role_cannot_empty_or_unprotect_the_ledger(app_role, keeper_actor, supplier, warehouse, product):
    with connected_as(app_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == app_role

        # An ordinary day's work goes through the services as usual.
        units = stock_units(keeper_actor, supplier, warehouse, product, ["ROLE-1", "ROLE-2"])
        assert len(units) == 2
        recorded = Movement.objects.count()
        assert recorded >= 2
        Product.objects.filter(pk=product.pk).update(name="改名也可以")

        with pytest.raises(ProgrammingError, match="permission denied"):
            _execute("TRUNCATE inventory_movement")
        with pytest.raises(ProgrammingError, match="must be owner"):
            _execute("ALTER TABLE inventory_movement DISABLE TRIGGER inventory_movement_append_only")
        with pytest.raises(ProgrammingError, match="must be owner"):
            _execute("ALTER TABLE inventory_movement DISABLE TRIGGER ALL")
        with pytest.raises(ProgrammingError, match="permission denied"):
            _execute("UPDATE inventory_movement SET note = 'edited'")
        with pytest.raises(ProgrammingError, match="permission denied"):
            _execute("DELETE FROM inventory_productchange")
        with pytest.raises(ProgrammingError, match="must be owner"):
            _execute("DROP TABLE inventory_movement")

        assert Movement.objects.count() == recorded


@pytest.mark.postgres
def test_granting_to_the_owner_itself_is_refused(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]

    with pytest.raises(CommandError, match="owns the tables"):
        call_command("grant_app_privileges", role=owner)
