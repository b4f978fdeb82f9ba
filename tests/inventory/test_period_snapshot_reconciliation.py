"""Reconciliation from the last closing snapshot equals reconciliation from the whole ledger, on
generated histories; and a put-away at acceptance onto the receiving location is no transfer."""
import datetime
import random
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.errors import Refused
from inventory.models import ClosedPeriod, Movement, PeriodBalance, Unit, UnitStatus
from inventory.selectors.periods import ledger_fold
from inventory.selectors.reconciliation import ledger_against_stock, local_setting, stock_flows, without_jit
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.period_close import store_place_balances
from inventory.services.receiving import LineInput
from inventory.services.stock import LotQuantity, scrap, transfer_stock
from tests.conftest import stock_units
from tests.factories import TODAY
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = pytest.mark.django_db
FAR = timezone.now() + datetime.timedelta(days=400)


def generate_history(seed, actor, supplier, places, product, lot_product):
    """A random day of receipts, transfers of units and lots, uses and scraps."""
    rng = random.Random(seed)
    hospital = places[0].hospital
    units = stock_units(actor, supplier, places[0], product, [f"G{seed}-{n}" for n in range(6)])
    expiry = TODAY + datetime.timedelta(days=700)
    for number, price in enumerate(("3.50", "4.00")):
        receive_and_accept(actor, supplier, places[0],
                           [LineInput(Decimal(price), product=lot_product, lot="L1", expiry=expiry, quantity=20)],
                           f"DN-LOT{seed}-{number}")
    for step in range(14):
        choice = rng.random()
        try:
            if choice < 0.45:
                unit = rng.choice(units)
                unit.refresh_from_db()
                target = rng.choice([place for place in places if place.pk != unit.location_id])
                transfer_stock(actor=actor, hospital=hospital, to_location=target, units=[unit],
                               idempotency_key=f"g{seed}-{step}")
            elif choice < 0.75:
                source, target = rng.sample(places, 2)
                transfer_stock(actor=actor, hospital=hospital, to_location=target, idempotency_key=f"g{seed}-{step}",
                               lots=[LotQuantity(lot_product, "L1", rng.randint(1, 5), source)])
            elif choice < 0.9:
                store = places[1]
                if rng.random() < 0.5:
                    consume_lot(actor=actor, hospital=hospital, product=lot_product, lot="L1", quantity=1,
                                idempotency_key=f"g{seed}-{step}", location=store,
                                context=ClinicalContext(encounter=f"ZY{seed}{step}", department=store.department))
                else:
                    unit = next((u for u in Unit.objects.filter(location=store, status=UnitStatus.IN_STOCK)), None)
                    if unit:
                        consume_unit(actor=actor, hospital=hospital, unit=unit, idempotency_key=f"g{seed}-{step}",
                                     context=ClinicalContext(encounter=f"ZY{seed}{step}", department=store.department))
            else:
                scrap(actor=actor, hospital=hospital, reason_code="DAMAGED", idempotency_key=f"g{seed}-{step}",
                      lots=[LotQuantity(lot_product, "L1", 1, rng.choice(places))])
        except Refused:
            pass  # not enough at that place: the history simply goes on


def snapshot_at(hospital, moment, closed_by):
    """A closed 'month' ending at `moment` with the ledger's fold as its snapshot (as a close makes it)."""
    period = ClosedPeriod.objects.create(hospital=hospital, month=TODAY.replace(day=1), starts_at=moment - datetime.timedelta(days=1),
                                         ends_at=moment, closed_by=closed_by)
    PeriodBalance.objects.bulk_create([
        PeriodBalance(period=period, product_id=r.product_id, location_id=r.location_id, lot=r.lot, owner=r.owner,
                      quantity=r.quantity, value=r.value)
        for r in ledger_fold(hospital, moment, None)
    ])
    return period


def drop(period):
    period.place_balances.all().delete()
    period.balances.all().delete()
    period.delete()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reconciliation_from_the_snapshot_equals_reconciliation_from_the_whole_ledger(
    seed, keeper_actor, keeper, supplier, warehouse, cath_lab_store, cabinet, product, lot_product,
):
    hospital = warehouse.hospital
    generate_history(seed, keeper_actor, supplier, [warehouse, cath_lab_store, cabinet], product, lot_product)
    moments = sorted(Movement.objects.values_list("occurred_at", flat=True).distinct())
    cut = moments[len(moments) // 2]
    later = moments[len(moments) * 3 // 4]
    start = moments[0] - datetime.timedelta(seconds=1)

    def everything(period_start):
        return ([row.as_dict() for row in stock_flows(hospital, period_start, FAR)], ledger_against_stock(hospital),
                ledger_fold(hospital, FAR, None))

    whole = {moment: everything(moment) for moment in (start, cut, later)}
    period = snapshot_at(hospital, cut, keeper)
    assert ledger_fold(hospital, FAR, period) == whole[cut][2]
    for moment in (start, cut, later):
        assert everything(moment) == whole[moment], moment
    # From the snapshot summed per place, as the close stores it: the same.
    store_place_balances(period)
    period.save(update_fields=["places_stored"])
    assert period.place_balances.exists()
    for moment in (start, cut, later):
        assert everything(moment) == whole[moment], ("per place", moment)
    drop(period)


def test_a_put_away_at_acceptance_onto_the_receiving_location_is_no_transfer(
    keeper_actor, supplier, warehouse, product, lot_product,
):
    hospital = warehouse.hospital
    start = timezone.now()
    stock_units(keeper_actor, supplier, warehouse, product, ["PA1", "PA2"])
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L9",
                                  expiry=TODAY + datetime.timedelta(days=700), quantity=2)], "DN-PA")
    assert Movement.objects.filter(kind=Movement.Kind.PUTAWAY, from_location=warehouse, to_location=warehouse).count() == 2

    table = {row.product_id: row for row in stock_flows(hospital, start, FAR)}
    units, lots = table[product.pk], table[lot_product.pk]
    assert (units.received, units.transferred_in, units.transferred_out, units.other, units.closing) == (2, 0, 0, 0, 2)
    assert (lots.received, lots.transferred_in, lots.transferred_out, lots.other, lots.closing) == (2, 0, 0, 0, 2)


@pytest.mark.postgres
@pytest.mark.parametrize("setting", ["on", "off"])
def test_the_whole_stock_aggregations_leave_the_callers_jit_setting_as_it_was(hospital, setting):
    """stock_flows and ledger_against_stock run without JIT compilation (costly for them), but the
    caller's transaction (a run, a close) runs on with its own setting."""
    from django.db import connection, transaction

    start = timezone.now() - datetime.timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jit', %s, true)", [setting])
        stock_flows(hospital, start, timezone.now())
        ledger_against_stock(hospital)
        cursor.execute("SELECT current_setting('jit')")
        assert cursor.fetchone()[0] == setting


@pytest.mark.postgres
def test_settings_for_a_block_hold_inside_it_and_are_put_back_after_it_and_after_an_error():
    """local_setting (and without_jit, built on it) sets several settings in one statement for the
    block; after it the caller's values are back, and after an error (the database's or not) its
    savepoint's rollback puts them back without hiding the error."""
    from django.db import DatabaseError, connection, transaction

    def current(cursor):
        cursor.execute("SELECT current_setting('jit'), current_setting('work_mem'), "
                       "current_setting('random_page_cost')")
        return cursor.fetchone()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jit', 'on', true), set_config('work_mem', '4MB', true), "
                       "set_config('random_page_cost', '4', true)")
        with local_setting(cursor, "work_mem", "64MB", random_page_cost="1.1"):
            assert current(cursor) == ("on", "64MB", "1.1")
        assert current(cursor) == ("on", "4MB", "4")
        with without_jit(cursor, work_mem="32MB"):
            assert current(cursor) == ("off", "32MB", "4")
            with without_jit(cursor):  # already held: nothing set again
                assert current(cursor) == ("off", "32MB", "4")
        assert current(cursor) == ("on", "4MB", "4")
        with pytest.raises(DatabaseError, match="division by zero"), without_jit(cursor, work_mem="32MB"):
            cursor.execute("SELECT 1 / 0")
        assert current(cursor) == ("on", "4MB", "4")
        with pytest.raises(ValueError), local_setting(cursor, "random_page_cost", "1.1"):
            raise ValueError("not the database's")
        assert current(cursor) == ("on", "4MB", "4")


def test_the_migration_sums_the_months_already_closed_per_place(keeper_actor, keeper, supplier, warehouse,
                                                                cath_lab_store, cabinet, product, lot_product):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    hospital = warehouse.hospital
    generate_history(7, keeper_actor, supplier, [warehouse, cath_lab_store, cabinet], product, lot_product)
    period = snapshot_at(hospital, FAR - datetime.timedelta(days=1), keeper)  # stored without place rows
    assert not period.places_stored and not period.place_balances.exists()
    migration = importlib.import_module("inventory.migrations.0053_period_place_balance")
    migration.sum_closed_months(apps, SimpleNamespace(connection=connection))

    period.refresh_from_db()
    summed = {}
    for balance in period.balances.all():
        place = (balance.product_id, balance.location_id)
        summed[place] = summed.get(place, 0) + balance.quantity
    assert period.places_stored and len(summed) >= 3
    assert {(row.product_id, row.location_id): row.quantity for row in period.place_balances.all()} == summed
    drop(period)
