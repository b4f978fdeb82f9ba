"""A closed month stores its flows (PeriodFlow) and its received and expensed totals; a period's 进销存
table and totals spanning closed months add them up instead of reading their movements — and are the
table and totals read from the ledger, row for row:
on a history of three closed months and the open one, with dated entries, receipts, transfers,
surplus and shortage adjustments, uses and a scrap, for periods starting and ending inside, on the
edges of and across the closed months, with and without a month whose flows were never stored."""
import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from inventory.models import ClosedPeriod, Location, LotBalance, Movement, PeriodFlow, Product, StockFlowRow
from inventory.selectors.periods import months_with_flows, months_with_totals
from inventory.selectors.reconciliation import (
    QUANTITY_COLUMNS,
    flow_sums_sql,
    movement_totals,
    period_totals,
    stock_flows,
)
from inventory.selectors.settlements import period_bounds
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.ledger import move_lot
from inventory.services.period_close import close_month, first_day, month_bounds, next_month
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import LotQuantity, scrap, transfer_stock
from tests.conftest import stock_units
from tests.factories import TODAY

pytestmark = pytest.mark.django_db

THIS_MONTH = TODAY.replace(day=1)


def months_back(count: int) -> datetime.date:
    month = THIS_MONTH
    for _ in range(count):
        month = first_day(month - datetime.timedelta(days=1))
    return month


M3, M2, M1 = months_back(3), months_back(2), months_back(1)


def at(month: datetime.date, day: int, hour: int = 10) -> datetime.datetime:
    return datetime.datetime.combine(month.replace(day=day), datetime.time(hour), tzinfo=timezone.get_default_timezone())


@pytest.fixture
def closed_history(keeper_actor, operator, hospital, supplier, warehouse, cath_lab_store, cabinet, product,
                   lot_product):
    """Three months of dated entries, closed one by one, then the open month's own movements."""
    document = (Movement.DocumentType.STOCK_ORDER, 0)
    expiry = TODAY + datetime.timedelta(days=700)

    def receive(lot, quantity, moment, key):
        move_lot(product=lot_product, lot=lot, quantity=quantity, source=None, to_location=warehouse,
                 kind=Movement.Kind.RECEIPT, actor=keeper_actor, idempotency_key=key, document=document,
                 new_balance_defaults={"unit_cost": Decimal("3.50"), "expiry": expiry}, occurred_at=moment)

    def adjust(lot, place, variance, moment, key):
        source = None if variance > 0 else LotBalance.objects.get(product=lot_product, lot=lot, location=place)
        move_lot(product=lot_product, lot=lot, quantity=abs(variance), source=source,
                 to_location=place if variance > 0 else None, kind=Movement.Kind.ADJUSTMENT, actor=keeper_actor,
                 idempotency_key=key, document=(Movement.DocumentType.STOCKTAKE, 0), reason_code="COUNT",
                 new_balance_defaults={"unit_cost": Decimal("3.50"), "expiry": expiry}, occurred_at=moment)

    def move(lot, quantity, source, target, moment, key):
        transfer_stock(actor=keeper_actor, hospital=hospital, to_location=target, idempotency_key=key,
                       lots=[LotQuantity(lot_product, lot, quantity, source)], occurred_at=moment)

    def use(lot, quantity, moment, key):
        consume_lot(actor=keeper_actor, hospital=hospital, product=lot_product, lot=lot, quantity=quantity,
                    location=cath_lab_store, idempotency_key=key,
                    context=ClinicalContext(encounter=f"ZY-{key}", department=cath_lab_store.department,
                                            occurred_at=moment))

    receive("L1", 40, at(M3, 5), "h-r1")
    receive("L2", 10, at(M3, 5, 11), "h-r2")
    move("L1", 12, warehouse, cath_lab_store, at(M3, 15), "h-t1")
    adjust("L1", cath_lab_store, 3, at(M3, 25), "h-a1")
    use("L1", 4, at(M2, 5), "h-u1")
    scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", idempotency_key="h-s1",
          lots=[LotQuantity(lot_product, "L1", 2, warehouse)], occurred_at=at(M2, 15))
    move_lot(product=lot_product, lot="L1", quantity=2, to_location=None, kind=Movement.Kind.DEPARTMENT_EXPENSE,
             source=LotBalance.objects.get(product=lot_product, lot="L1", location=cath_lab_store), actor=keeper_actor,
             idempotency_key="h-e1", document=document, occurred_at=at(M2, 20))
    move("L1", 5, cath_lab_store, cabinet, at(M2, 25), "h-t2")
    adjust("L2", warehouse, -2, at(M1, 5), "h-a2")
    move("L2", 4, warehouse, cath_lab_store, at(M1, 15), "h-t3")
    receive("L1", 8, at(M1, 25), "h-r3")
    use("L2", 1, at(M1, 28), "h-u2")
    for month in (M3, M2, M1):
        run_reconciliation(hospital=hospital, period_start=month, period_end=next_month(month) - datetime.timedelta(days=1))
        close_month(hospital=hospital, month=month, user=operator, acknowledge_his_backlog=True)
    units = stock_units(keeper_actor, supplier, warehouse, product, ["F1", "F2"])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units,
                   lots=[LotQuantity(lot_product, "L1", 6, warehouse)], idempotency_key="h-t4")
    consume_unit(actor=keeper_actor, hospital=hospital, unit=units[0], idempotency_key="h-u3",
                 context=ClinicalContext(encounter="ZY-NOW", department=cath_lab_store.department))
    return hospital


def table(hospital, first, last, *, from_closed_months=True):
    """The rows of the period's table statement (product, location, QUANTITY_COLUMNS), empty ones left
    out, sorted; and whether the statement read stored month flows."""
    sql, params = flow_sums_sql(hospital, *period_bounds(first, last), from_closed_months=from_closed_months)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = sorted(tuple(int(value) for value in row) for row in cursor.fetchall() if any(row[2:]))
    return rows, PeriodFlow._meta.db_table in sql


# (first day, last day) of periods: starting inside the first closed month (its movements before the
# start taken off its flows), on a month's first day, ending on a month's last day, ending inside a
# closed month (not added up: its movements are read), inside one closed month, in the open month.
PERIODS = [
    (M3.replace(day=10), TODAY),
    (M2, TODAY),
    (M2.replace(day=12), THIS_MONTH - datetime.timedelta(days=1)),
    (M3, M2.replace(day=20)),
    (M3.replace(day=20), M1.replace(day=20)),
    (M1.replace(day=3), M1.replace(day=20)),
    (TODAY, TODAY),
]
ADDS_UP_MONTHS = [True, True, True, True, True, False, False]


def test_the_close_stores_the_flows_of_its_months_table(closed_history):
    for month in (M3, M2, M1):
        period = ClosedPeriod.objects.get(hospital=closed_history, month=month)
        assert period.flows_stored
        stored = sorted((f.product_id, f.location_id, *(getattr(f, name) for name in QUANTITY_COLUMNS[1:]))
                        for f in PeriodFlow.objects.filter(period=period))
        flows = sorted((row.product_id, row.location_id, *(getattr(row, name) for name in QUANTITY_COLUMNS[1:]))
                       for row in stock_flows(closed_history, *month_bounds(month)))
        assert stored == [row for row in flows if any(row[2:])]
        assert stored, month


def test_a_periods_table_from_its_closed_months_is_the_table_from_the_ledger(closed_history):
    kinds = set(Movement.objects.filter(hospital=closed_history).values_list("kind", flat=True))
    assert {"RECEIPT", "TRANSFER", "ADJUSTMENT", "CONSUME", "SCRAP"} <= kinds
    for (first, last), adds_up in zip(PERIODS, ADDS_UP_MONTHS, strict=True):
        from_months, read_months = table(closed_history, first, last)
        from_ledger, read_none = table(closed_history, first, last, from_closed_months=False)
        assert (read_months, read_none) == (adds_up, False), (first, last)
        assert from_months == from_ledger, (first, last)
        assert from_ledger, (first, last)


def test_a_month_closed_without_its_flows_is_read_from_the_ledger(closed_history):
    ClosedPeriod.objects.filter(hospital=closed_history, month=M3).update(flows_stored=False)
    assert [p.month for p in months_with_flows(closed_history.pk, None, period_bounds(TODAY, TODAY)[1])] == [M2, M1]
    for first, last in PERIODS:
        assert table(closed_history, first, last)[0] == table(closed_history, first, last, from_closed_months=False)[0]
    ClosedPeriod.objects.filter(hospital=closed_history, month=M2).update(flows_stored=False)
    assert [p.month for p in months_with_flows(closed_history.pk, None, period_bounds(TODAY, TODAY)[1])] == [M1]


def test_a_runs_stored_table_over_closed_months_is_the_table_from_the_ledger(closed_history):
    first, last = PERIODS[0]
    run = run_reconciliation(hospital=closed_history, period_start=first, period_end=last, rerun=True)
    stored = [tuple(row) for row in StockFlowRow.objects.filter(run=run).order_by("position").values_list(
        "product_id", "location_id", *QUANTITY_COLUMNS)]
    codes = dict(Product.objects.values_list("pk", "internal_code"))
    places = dict(Location.objects.values_list("pk", "code"))
    expected = sorted(table(closed_history, first, last, from_closed_months=False)[0],
                      key=lambda row: (places[row[1]], codes[row[0]]))
    assert stored == expected and len(stored) > 3


def test_the_close_stores_its_months_totals_and_a_periods_totals_add_them_up_as_the_ledger_does(closed_history):
    """A closed month's received and expensed totals are those of its movements; a period's totals from
    the closed months inside it (one starting before the period's start taken off) are the ledger's."""
    hospital = closed_history
    for month in (M3, M2, M1):
        period = ClosedPeriod.objects.get(hospital=hospital, month=month)
        stored = (period.received_quantity, period.received_amount, period.expensed_quantity, period.expensed_amount)
        assert stored == tuple(movement_totals(hospital, *month_bounds(month))), month
    assert ClosedPeriod.objects.get(hospital=hospital, month=M2).expensed_quantity == 2
    for (first, last), adds_up in zip(PERIODS, ADDS_UP_MONTHS, strict=True):
        bounds = period_bounds(first, last)
        assert bool(months_with_totals(hospital.pk, *bounds)) == adds_up, (first, last)
        from_months = period_totals(hospital, *bounds)
        assert from_months == period_totals(hospital, *bounds, from_closed_months=False), (first, last)
    received = period_totals(hospital, *period_bounds(*PERIODS[0]))
    assert (received.received_quantity, received.expensed_quantity) == (8 + 2, 2)  # M3's receipts before the 10th off
    ClosedPeriod.objects.filter(hospital=hospital, month=M2).update(received_quantity=None)
    assert [month.month for month in months_with_totals(hospital.pk, *period_bounds(*PERIODS[0]))] == [M1]
    for first, last in PERIODS:
        bounds = period_bounds(first, last)
        assert period_totals(hospital, *bounds) == period_totals(hospital, *bounds, from_closed_months=False)
