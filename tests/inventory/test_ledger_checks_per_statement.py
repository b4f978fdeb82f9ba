"""The ledger's refusals on INSERT, checked once per statement (inventory migration 0051), refuse the
rows the per-row triggers of 0025, 0039 and 0042 refused, with the same SQLSTATE and message, and let
the same rows through (real PostgreSQL).

Each case is one INSERT (`bulk_create`, one row or several) run under the statement-level triggers,
then again with the per-row triggers put back by 0051's own reverse inside a savepoint (PostgreSQL's
DDL is transactional); both outcomes must be equal, and a refused statement writes none of its rows.
"""
import datetime
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from inventory.actors import Actor
from inventory.models import ClosedPeriod, Location, Movement, UnitStatus
from inventory.services.transfers import TransferLot
from tests import factories
from tests.inventory.test_alliance_transfer_holds import member, send, store_stock  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

MIGRATION = import_module("inventory.migrations.0051_ledger_checks_per_statement")
RULES = ("inventory_movement_alliance_held", "inventory_movement_alliance_lot_held",
         "inventory_movement_closed_period_inserted", "inventory_movement_closed_period")
KEYS = itertools.count()


@contextmanager
def per_row_triggers() -> Iterator[None]:
    """The ledger's triggers as they were before 0051, until the end of the block (rolled back)."""
    savepoint = transaction.savepoint()
    try:
        with connection.schema_editor(atomic=False) as editor:
            MIGRATION.check_per_row(None, editor)
        yield
    finally:
        transaction.savepoint_rollback(savepoint)


def trigger_definitions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                       "WHERE tgrelid = 'inventory_movement'::regclass AND tgname = ANY(%s)", [list(RULES)])
        return dict(cursor.fetchall())


class _Undone(Exception):
    pass


def outcome(make_rows: Callable[[], list[Movement]]) -> tuple[str, str] | int:
    """The refusal of one INSERT of the rows (SQLSTATE, message), or how many rows it wrote; undone."""
    rows = make_rows()
    keys = [row.idempotency_key for row in rows]
    try:
        with transaction.atomic():
            Movement.objects.bulk_create(rows)
            raise _Undone(Movement.objects.filter(idempotency_key__in=keys).count())
    except _Undone as undone:
        return undone.args[0]
    except IntegrityError as error:
        assert not Movement.objects.filter(idempotency_key__in=keys).exists()
        return error.__cause__.sqlstate, error.__cause__.diag.message_primary


def under_both(make_rows: Callable[[], list[Movement]]) -> tuple[str, str] | int:
    """The outcome under the statement-level triggers, checked equal to the per-row triggers' one."""
    per_statement = outcome(make_rows)
    with per_row_triggers():
        assert outcome(make_rows) == per_statement
    return per_statement


def refused_with(result: tuple[str, str] | int, code: str) -> bool:
    return isinstance(result, tuple) and result[0] == "23001" and result[1].startswith(f"{code}: ")


@pytest.fixture
def ledger(hospital, keeper, operator, product, lot_product, cath_lab_store, member, store_stock):  # noqa: F811
    """Three stents and ten of lot L1 in the cath lab's store; a transfer holding the first stent and
    6 of the lot; an alliance in-transit location; the books closed through yesterday. `row(...)`
    makes one raw movement (a scrap of the second stent from the store, now, by default)."""
    h1, h2, h3 = store_stock
    send(Actor(user=keeper), cath_lab_store, member, units=[h1], lots=[TransferLot(lot_product, "L1", 6)])
    transit = factories.LocationFactory(hospital=hospital, code="ALLIANCE-TRANSIT", kind=Location.Kind.IN_TRANSIT)
    closed_end = timezone.now() - datetime.timedelta(days=1)
    ClosedPeriod.objects.create(hospital=hospital, month=closed_end.date().replace(day=1),
                                starts_at=closed_end - datetime.timedelta(days=30), ends_at=closed_end,
                                closed_by=operator)

    def row(**fields) -> Movement:
        values = {"hospital": hospital, "kind": Movement.Kind.SCRAP, "product": product, "unit": h2, "lot": h2.lot,
                  "quantity": 1, "from_location": cath_lab_store, "from_status": UnitStatus.IN_STOCK,
                  "to_status": UnitStatus.SCRAPPED, "reason_code": "DAMAGED", "actor_user": keeper,
                  "occurred_at": timezone.now(), "document_type": Movement.DocumentType.STOCK_ORDER,
                  "document_id": 1, "idempotency_key": f"raw-{next(KEYS)}", **fields}
        return Movement(**values)

    def lot_row(quantity: int, **fields) -> Movement:
        return row(product=lot_product, unit=None, lot="L1", quantity=quantity, from_status="", to_status="",
                   **fields)

    row.units, row.transit, row.closed_end, row.lot = (h1, h2, h3), transit, closed_end, lot_row
    return row


def test_the_per_row_triggers_are_the_ones_compared_with(ledger):
    definitions = trigger_definitions()
    assert set(definitions) == set(RULES)
    assert "FOR EACH STATEMENT" in definitions["inventory_movement_alliance_held"]
    assert "BEFORE UPDATE OF occurred_at" in definitions["inventory_movement_closed_period"]
    with per_row_triggers():
        definitions = trigger_definitions()
        assert "inventory_movement_closed_period_inserted" not in definitions
        assert all("FOR EACH ROW" in definition for definition in definitions.values())
        assert "BEFORE INSERT OR UPDATE OF occurred_at" in definitions["inventory_movement_closed_period"]
    assert "FOR EACH STATEMENT" in trigger_definitions()["inventory_movement_alliance_held"]


def test_a_movement_dated_in_a_closed_month_is_refused_alone_or_among_good_rows(ledger):
    late = ledger.closed_end - datetime.timedelta(hours=1)
    later = ledger.closed_end - datetime.timedelta(minutes=1)
    assert refused_with(under_both(lambda: [ledger(occurred_at=late)]), "PERIOD_CLOSED")
    many = under_both(lambda: [ledger(), ledger(occurred_at=late), ledger(occurred_at=later), ledger()])
    assert refused_with(many, "PERIOD_CLOSED") and "inventory_movement dated" in many[1]
    assert under_both(lambda: [ledger(occurred_at=ledger.closed_end)]) == 1  # the end is exclusive
    assert under_both(lambda: [ledger(), ledger(), ledger()]) == 3


def test_a_movement_leaving_alliance_transit_is_refused_unless_it_is_the_transfers_own(ledger):
    _h1, _h2, h3 = ledger.units
    leaving = {"unit": h3, "from_location": ledger.transit}
    assert refused_with(under_both(lambda: [ledger(**leaving)]), "ALLIANCE_TRANSIT_LOCKED")
    assert refused_with(under_both(lambda: [ledger(), ledger(**leaving), ledger()]), "ALLIANCE_TRANSIT_LOCKED")
    own = {"document_type": Movement.DocumentType.ALLIANCE_TRANSFER}
    assert under_both(lambda: [ledger(**leaving, **own), ledger(**leaving, kind=Movement.Kind.EXPIRE)]) == 2


def test_a_movement_of_a_unit_reserved_for_a_transfer_is_refused_alone_or_among_good_rows(ledger):
    h1, _h2, h3 = ledger.units
    assert refused_with(under_both(lambda: [ledger(unit=h1)]), "ALLIANCE_STOCK_RESERVED")
    many = under_both(lambda: [ledger(), ledger(unit=h3), ledger(unit=h1)])
    assert refused_with(many, "ALLIANCE_STOCK_RESERVED") and f"unit {h1.pk} " in many[1]
    assert under_both(lambda: [ledger(unit=h1, document_type=Movement.DocumentType.ALLIANCE_TRANSFER)]) == 1


def test_a_lot_movement_taking_reserved_quantity_is_refused_alone_or_among_good_rows(ledger):
    # 10 on hand, 6 reserved: 4 may move; each row is weighed against the balance alone.
    assert refused_with(under_both(lambda: [ledger.lot(5)]), "ALLIANCE_LOT_RESERVED")
    many = under_both(lambda: [ledger.lot(4), ledger.lot(7), ledger.lot(5)])
    assert refused_with(many, "ALLIANCE_LOT_RESERVED") and "(10 on hand, 7 asked)" in many[1]
    assert under_both(lambda: [ledger.lot(4), ledger.lot(4)]) == 2
    assert under_both(lambda: [ledger.lot(10, kind=Movement.Kind.EXPIRE), ledger.lot(4, from_location=None)]) == 2


def test_a_row_that_also_breaks_a_column_constraint_is_refused_by_the_constraint(ledger):
    """The first difference 0051 documents: PostgreSQL checks a row's NOT NULL and CHECK constraints
    after the BEFORE triggers but before the statement's; the row is refused either way."""
    h1, _h2, _h3 = ledger.units

    def rows():
        return [ledger(unit=h1, occurred_at=None)]

    assert outcome(rows)[0] == "23502"  # not_null_violation
    with per_row_triggers():
        assert refused_with(outcome(rows), "ALLIANCE_STOCK_RESERVED")


def test_rows_breaking_different_rules_are_refused_by_the_first_rule_not_the_first_row(ledger):
    """The second difference 0051 documents: the statement is refused either way, and writes nothing."""
    h1, _h2, _h3 = ledger.units

    def rows():
        return [ledger(occurred_at=ledger.closed_end - datetime.timedelta(hours=1)), ledger(unit=h1)]

    assert refused_with(outcome(rows), "ALLIANCE_STOCK_RESERVED")
    with per_row_triggers():
        assert refused_with(outcome(rows), "PERIOD_CLOSED")
