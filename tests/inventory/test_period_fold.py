"""The close's snapshot (`ledger_fold`, set-based) against an independent fold of the ledger — the
movements replayed one by one in Python — on a mixed history: consigned (supplier-owned) and owned
units and lots, uses of consigned units (a change of owner each) and a refund (the owner changes
back), transfers, a scrap, a department expense; snapshots cut before, between and after the
changes of owner, with and without an earlier snapshot to start from."""
import csv
import datetime
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import ClosedPeriod, LotBalance, LotMovementLayer, Movement, PeriodBalance, Unit
from inventory.selectors import reconciliation as reconciliation_selectors
from inventory.selectors.periods import FoldRow, ledger_fold
from inventory.selectors.reconciliation import IN_STOCK_STATUSES, expired_lots_in_stock, expired_units_in_stock
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit, refund_consumption
from inventory.services.period_close import FLOW_HEADER, close_month, month_bounds, next_month
from inventory.services.receiving import LineInput
from inventory.services.reconciliation import run_reconciliation
from inventory.services.reports import LOCATION_TOTALS_HEADER
from inventory.services.stock import LotQuantity, scrap, transfer_stock
from tests import factories
from tests.conftest import stock_units
from tests.factories import TODAY
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = pytest.mark.django_db

THIS_MONTH = TODAY.replace(day=1)
AFTER_MONTH = datetime.datetime.combine(next_month(THIS_MONTH), datetime.time(1), tzinfo=timezone.get_default_timezone())
OWNER_CHANGE = Movement.Kind.OWNER_CHANGE


def python_fold(hospital, end):
    """Balances at `end` per product × location × lot × owner, movement by movement: what the
    snapshot must hold. A unit's owner at a movement: replaying its movements latest first from its
    owner now, each change of owner going back to the owner it changed from."""
    movements = list(Movement.objects.filter(hospital=hospital).order_by("occurred_at", "pk"))
    owner = dict(Unit.objects.filter(hospital=hospital).values_list("pk", "owner"))
    cost = dict(Unit.objects.filter(hospital=hospital).values_list("pk", "unit_cost"))
    owner_at = {}
    for movement in reversed(movements):
        if movement.unit_id is not None and movement.kind == OWNER_CHANGE:
            owner[movement.unit_id] = movement.from_owner
        elif movement.unit_id is not None:
            owner_at[movement.pk] = owner[movement.unit_id]
    layers = defaultdict(Decimal)
    for movement_id, quantity, unit_cost in LotMovementLayer.objects.values_list("movement_id", "quantity", "unit_cost"):
        layers[movement_id] += quantity * unit_cost
    lot_owner = {(p, lot, place): o for p, lot, place, o in LotBalance.objects.values_list(
        "product_id", "lot", "location_id", "owner")}
    balances = defaultdict(lambda: [0, Decimal("0.00")])
    for movement in movements:
        if movement.occurred_at >= end:
            continue
        value = cost[movement.unit_id] if movement.unit_id else layers[movement.pk]
        for place, sign, owner_field in ((movement.to_location_id, 1, "to_owner"),
                                         (movement.from_location_id, -1, "from_owner")):
            if place is None:
                continue
            if movement.unit_id is None:
                held_by = lot_owner.get((movement.product_id, movement.lot, place), "")
            elif movement.kind == OWNER_CHANGE:
                held_by = getattr(movement, owner_field)
            else:
                held_by = owner_at[movement.pk]
            balance = balances[(movement.product_id, place, movement.lot, held_by)]
            balance[0] += sign * movement.quantity
            balance[1] += sign * value
    return [FoldRow(*key, quantity, value.quantize(Decimal("0.01")))
            for key, (quantity, value) in sorted(balances.items()) if quantity or value]


def lots_replayed(hospital, as_of, end):
    """The expired lots' quantities at `end` by the ledger replayed, as `expired_lots_in_stock` states
    them: (product, lot, place, quantity, the lot's earliest expiry and highest cost at any place)."""
    expiries, costs = defaultdict(list), defaultdict(list)
    for product_id, lot, expiry, unit_cost in LotBalance.objects.filter(hospital=hospital, expiry__lt=as_of).values_list(
            "product_id", "lot", "expiry", "unit_cost"):
        expiries[(product_id, lot)].append(expiry)
        costs[(product_id, lot)].append(unit_cost)
    held = defaultdict(int)
    for row in python_fold(hospital, end):
        if (row.product_id, row.lot) in expiries:
            held[(row.product_id, row.lot, row.location_id)] += row.quantity
    return sorted((*key, quantity, min(expiries[key[:2]]), max(costs[key[:2]]))
                  for key, quantity in held.items() if quantity > 0)


@pytest.fixture
def mixed(keeper_actor, hospital, supplier, warehouse, cath_lab_store, cabinet, product, lot_product):
    """Owned and consigned units and lots moved, used, refunded, scrapped and expensed."""
    consigned = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__is_consignment=True, supplier=supplier, unit_price="2000.00").product
    consigned_lot = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__is_consignment=True, product__tracking="LOT",
        product__is_high_value=False, supplier=supplier, unit_price="8.00").product
    expensed = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False,
        product__expensed_on_issue=True, product__his_charge_code="", product__name="一次性使用敷料", supplier=supplier,
        unit_price="1.20").product
    owned_units = stock_units(keeper_actor, supplier, warehouse, product, ["O1", "O2", "O3"])
    consigned_units = stock_units(keeper_actor, supplier, warehouse, consigned, ["C1", "C2", "C3", "C4"])
    expiry = TODAY + datetime.timedelta(days=700)
    for number, (item, price, quantity) in enumerate(
        [(lot_product, "3.50", 20), (lot_product, "4.00", 10), (consigned_lot, "8.00", 12), (expensed, "1.20", 30)]
    ):
        receive_and_accept(keeper_actor, supplier, warehouse,
                           [LineInput(Decimal(price), product=item, lot="L1", expiry=expiry, quantity=quantity)],
                           f"DN-MIX{number}")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store,
                   units=[owned_units[0], *consigned_units[:3]],
                   lots=[LotQuantity(lot_product, "L1", 18, warehouse), LotQuantity(consigned_lot, "L1", 6, warehouse),
                         LotQuantity(expensed, "L1", 10, warehouse)], idempotency_key="mix-t1")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cabinet, units=[consigned_units[2]],
                   lots=[LotQuantity(lot_product, "L1", 5, cath_lab_store)], idempotency_key="mix-t2")
    context = ClinicalContext(encounter="ZY-MIX1", department=cath_lab_store.department)
    first_use = consume_unit(actor=keeper_actor, hospital=hospital, unit=consigned_units[0], context=context,
                             idempotency_key="mix-u1")
    consume_unit(actor=keeper_actor, hospital=hospital, unit=consigned_units[1], context=context,
                 idempotency_key="mix-u2")
    consume_unit(actor=keeper_actor, hospital=hospital, unit=owned_units[0], context=context, idempotency_key="mix-u3")
    consume_lot(actor=keeper_actor, hospital=hospital, product=lot_product, lot="L1", quantity=11, context=context,
                location=cath_lab_store, idempotency_key="mix-u4")
    consume_lot(actor=keeper_actor, hospital=hospital, product=consigned_lot, lot="L1", quantity=2, context=context,
                location=cath_lab_store, idempotency_key="mix-u5")
    refund_consumption(actor=keeper_actor, consumption=first_use, reason_code="WRONG_PATIENT", to_quarantine=False,
                       idempotency_key="mix-r1")
    consume_unit(actor=keeper_actor, hospital=hospital, unit=Unit.objects.get(pk=consigned_units[0].pk),
                 context=ClinicalContext(encounter="ZY-MIX2", department=cath_lab_store.department),
                 idempotency_key="mix-u6")
    scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[owned_units[2]],
          lots=[LotQuantity(consigned_lot, "L1", 1, warehouse)], idempotency_key="mix-s1")
    kinds = set(Movement.objects.values_list("kind", flat=True))
    assert {OWNER_CHANGE, Movement.Kind.DEPARTMENT_EXPENSE, Movement.Kind.UNCONSUME} <= kinds
    assert Movement.objects.filter(kind=OWNER_CHANGE).count() == 4  # three uses and a refund of consigned units
    return hospital


def snapshot_at(hospital, moment, closed_by):
    """A closed period ending at `moment` whose snapshot is the independent fold."""
    period = ClosedPeriod.objects.create(hospital=hospital, month=THIS_MONTH, starts_at=moment - datetime.timedelta(days=1),
                                         ends_at=moment, closed_by=closed_by)
    PeriodBalance.objects.bulk_create([
        PeriodBalance(period=period, product_id=r.product_id, location_id=r.location_id, lot=r.lot, owner=r.owner,
                      quantity=r.quantity, value=r.value)
        for r in python_fold(hospital, moment)
    ])
    return period


def test_the_fold_equals_the_ledger_replayed_at_every_moment(mixed, operator):
    hospital = mixed
    moments = sorted(set(Movement.objects.values_list("occurred_at", flat=True)))
    cuts = [*(moment + datetime.timedelta(microseconds=1) for moment in moments), moments[0]]
    for cut in cuts:
        assert ledger_fold(hospital, cut, None) == python_fold(hospital, cut), cut
    changes = sorted(Movement.objects.filter(kind=OWNER_CHANGE).values_list("occurred_at", flat=True))
    # From a snapshot taken before any change of owner, and from one between the use and the refund.
    for since_moment in (changes[0] - datetime.timedelta(microseconds=1), changes[1]):
        period = snapshot_at(hospital, since_moment, operator)
        for cut in cuts:
            if cut >= since_moment:
                assert ledger_fold(hospital, cut, period) == python_fold(hospital, cut), (since_moment, cut)
        period.balances.all().delete()
        period.delete()


def test_the_close_stores_the_ledger_replayed_with_owners_and_values(mixed, operator, cath_lab_store, product):
    hospital = mixed
    last = next_month(THIS_MONTH) - datetime.timedelta(days=1)
    run_reconciliation(hospital=hospital, period_start=THIS_MONTH, period_end=last)
    period = close_month(hospital=hospital, month=THIS_MONTH, user=operator, now=AFTER_MONTH,
                         acknowledge_his_backlog=True)

    _, end = month_bounds(THIS_MONTH)
    stored = [FoldRow(b.product_id, b.location_id, b.lot, b.owner, b.quantity, b.value)
              for b in period.balances.order_by("product_id", "location_id", "lot", "owner")]
    assert stored == python_fold(hospital, end)
    owners = {row.owner for row in stored}
    assert owners == {"HOSPITAL", "SUPPLIER"}
    # The refunded consigned unit went back to the supplier, then was used again: nothing is left of
    # it in the store, and the two consigned units still held are the supplier's.
    consigned_held = [row for row in stored if row.owner == "SUPPLIER" and row.lot == ""]
    assert sum(row.quantity for row in consigned_held) == 2


def test_the_monthly_report_has_the_daily_tables_columns_with_expensed_and_processed(mixed, operator, cath_lab_store):
    hospital = mixed
    last = next_month(THIS_MONTH) - datetime.timedelta(days=1)
    run_reconciliation(hospital=hospital, period_start=THIS_MONTH, period_end=last)
    period = close_month(hospital=hospital, month=THIS_MONTH, user=operator, now=AFTER_MONTH,
                         acknowledge_his_backlog=True)

    rows = list(csv.reader(io.StringIO(period.report_csv.read().decode("utf-8-sig"))))
    header = rows.index(FLOW_HEADER)
    assert FLOW_HEADER[4:] == LOCATION_TOTALS_HEADER[3:]
    assert {"科室领用", "加工"} <= set(FLOW_HEADER)
    table = [dict(zip(FLOW_HEADER, row, strict=True)) for row in rows[header + 1:rows.index([], header)]]
    expensed = next(row for row in table if row["库位编码"] == cath_lab_store.code and row["产品名称"] == "一次性使用敷料")
    # Ten issued to the department store, expensed as they arrived: in by transfer, out as 科室领用.
    assert (expensed["调入"], expensed["科室领用"], expensed["加工"], expensed["期末"]) == ("10", "10", "0", "0")
    for row in table:
        quantities = [int(row[name]) for name in FLOW_HEADER[4:]]
        opening, received, moved_in, moved_out, used, refunded, returned, scrapped, adjusted, other, spent, \
            processed, closing = quantities
        assert closing == (opening + received + moved_in - moved_out - used + refunded - returned - scrapped + adjusted
                           + other - spent + processed)


def test_expired_stock_at_a_moment_is_read_from_the_snapshot_and_the_units_that_can_be_in_stock(mixed, operator):
    """The expiry check's units (only those in stock now or moved since are looked up) and lots
    (from the snapshot by then) equal the ledger replayed, before and after a snapshot."""
    hospital = mixed
    as_of = TODAY + datetime.timedelta(days=2000)  # everything received has expired by then

    def units_replayed(end):
        found = []
        for unit in Unit.objects.filter(hospital=hospital, expiry__lt=as_of):
            last = Movement.objects.filter(unit=unit, occurred_at__lt=end).order_by("-occurred_at", "-pk").first()
            if last and last.to_location_id and last.to_status in IN_STOCK_STATUSES:
                found.append((unit.pk, last.to_location_id, last.to_status))
        return sorted(found)

    def read(end):
        return (sorted((u.pk, u.place, u.status_then) for u in expired_units_in_stock(hospital, as_of, end)),
                [(lot.product_id, lot.lot, lot.location_id, lot.quantity, lot.expiry, lot.unit_cost)
                 for lot in expired_lots_in_stock(hospital, as_of, end)])

    moments = sorted(set(Movement.objects.values_list("occurred_at", flat=True)))
    cuts = [moment + datetime.timedelta(microseconds=1) for moment in moments]
    expected = {cut: (units_replayed(cut), lots_replayed(hospital, as_of, cut)) for cut in cuts}
    assert any(units for units, _ in expected.values()) and any(lots for _, lots in expected.values())
    assert len({tuple(units) for units, _ in expected.values()}) > 2  # units come and go over the history
    for cut in cuts:
        assert read(cut) == expected[cut], cut
    period = snapshot_at(hospital, cuts[len(cuts) // 2], operator)
    for cut in cuts:
        assert read(cut) == expected[cut], ("with a snapshot", cut)
    period.balances.all().delete()
    period.delete()


@pytest.mark.parametrize("narrowed", [False, True], ids=["aggregated whole", "narrowed first"])
def test_expired_lots_are_read_for_the_lots_the_ledger_can_hold_and_stay_the_ledger_replayed(
        keeper_actor, hospital, supplier, warehouse, cath_lab_store, lot_product, operator, narrowed, monkeypatch):
    """From a snapshot only the expired lots non-zero in it or moved since are aggregated: a lot emptied
    before the snapshot, one emptied after it, one received after it, one whose expired place was
    emptied while another place (expiring later) still holds it — found there with the expired
    place's expiry and cost — and one the ledger holds while its LotBalance says 0: against the ledger
    replayed, without a snapshot and from snapshots cut between the changes."""
    as_of, expired, later = (TODAY + datetime.timedelta(days=days) for days in (800, 700, 900))
    monkeypatch.setattr(reconciliation_selectors, "NARROW_EXPIRED_FROM", 1 if narrowed else 10_000)

    def receive(lot, quantity):
        receive_and_accept(keeper_actor, supplier, warehouse, [
            LineInput(Decimal("3.50"), product=lot_product, lot=lot, expiry=expired, quantity=quantity)], f"DN-{lot}")

    def empty(lot, quantity):
        scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED",
              lots=[LotQuantity(lot_product, lot, quantity, warehouse)], idempotency_key=f"scrap-{lot}-{quantity}")

    for lot, quantity in (("EMPTIED-BEFORE", 5), ("EMPTIED-AFTER", 4), ("ONE-PLACE", 9), ("HELD", 2)):
        receive(lot, quantity)
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(lot_product, "ONE-PLACE", 6, warehouse)], idempotency_key="exp-t1")
    LotBalance.objects.filter(lot="ONE-PLACE", location=cath_lab_store).update(expiry=later, unit_cost="4.00")
    empty("EMPTIED-BEFORE", 5)
    empty("ONE-PLACE", 3)
    empty("EMPTIED-AFTER", 1)
    empty("EMPTIED-AFTER", 3)
    receive("RECEIVED-AFTER", 7)
    LotBalance.objects.filter(lot="HELD").update(quantity=0)  # the ledger still holds 2

    moments = sorted(set(Movement.objects.values_list("occurred_at", flat=True)))
    cuts = [moment + datetime.timedelta(microseconds=1) for moment in moments]
    expected = {cut: lots_replayed(hospital, as_of, cut) for cut in cuts}
    found_last = {(lot, place, quantity, expiry, cost) for _, lot, place, quantity, expiry, cost in expected[cuts[-1]]}
    assert found_last == {("ONE-PLACE", cath_lab_store.pk, 6, expired, Decimal("3.50")),  # the expired place's
                          ("HELD", warehouse.pk, 2, expired, Decimal("3.50")),
                          ("RECEIVED-AFTER", warehouse.pk, 7, expired, Decimal("3.50"))}

    def read(end):
        return [(lot.product_id, lot.lot, lot.location_id, lot.quantity, lot.expiry, lot.unit_cost)
                for lot in expired_lots_in_stock(hospital, as_of, end)]

    for cut in cuts:
        assert read(cut) == expected[cut], cut
    for since in cuts:
        period = snapshot_at(hospital, since, operator)
        for cut in cuts:
            if cut >= since:
                assert read(cut) == expected[cut], (since, cut)
        period.balances.all().delete()
        period.delete()
