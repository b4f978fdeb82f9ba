"""The monthly close (月结): blockers, the closing snapshot, the lock, the 月报."""
import datetime
import hashlib
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone, translation

from inventory.errors import Refused
from inventory.models import (
    ChargeDelivery,
    ClosedPeriod,
    Consumption,
    HisSettlementLine,
    LotBalance,
    Movement,
    PeriodBalance,
    Unit,
)
from inventory.selectors.periods import ledger_fold
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.his import import_settlement_lines
from inventory.services.period_close import close_month, month_blockers, month_bounds, next_month
from inventory.services.receiving import LineInput
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import LotQuantity, scrap, transfer_stock
from tests.conftest import stock_units
from tests.factories import TODAY
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = pytest.mark.django_db

THIS_MONTH = TODAY.replace(day=1)
# "Now" for the close: the first day of next month, so that this month (holding the test's
# history, all dated today) is over. Real now stays inside it: every write is dated in it.
AFTER_MONTH = datetime.datetime.combine(next_month(THIS_MONTH), datetime.time(1), tzinfo=timezone.get_default_timezone())


@pytest.fixture
def history(keeper_actor, supplier, warehouse, cath_lab_store, product, lot_product):
    units = stock_units(keeper_actor, supplier, warehouse, product, ["P1", "P2", "P3"])
    expiry = TODAY + datetime.timedelta(days=700)
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=expiry, quantity=10)], "DN-L")
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=[units[0]],
                   lots=[LotQuantity(lot_product, "L1", 4, warehouse)], idempotency_key="h-t1")
    scrap(actor=keeper_actor, hospital=warehouse.hospital, reason_code="DAMAGED", units=[units[2]],
          idempotency_key="h-s1")
    return units


def reconcile_month(hospital):
    last = next_month(THIS_MONTH) - datetime.timedelta(days=1)
    return run_reconciliation(hospital=hospital, period_start=THIS_MONTH, period_end=last)


def close(hospital, operator, **kwargs):
    return close_month(hospital=hospital, month=THIS_MONTH, user=operator, now=AFTER_MONTH, **kwargs)


def test_a_month_not_over_and_not_reconciled_lists_its_blockers(history, hospital, operator):
    codes = [blocker.code for blocker in month_blockers(hospital, THIS_MONTH)]
    assert codes == ["MONTH_NOT_OVER", "DAYS_NOT_RECONCILED"]

    with pytest.raises(Refused) as refused:
        close(hospital, operator)
    assert refused.value.code == "PERIOD_NOT_CLOSABLE" and refused.value.status == 409
    assert "reconciliation" in refused.value.detail or "对账" in refused.value.detail
    assert not ClosedPeriod.objects.exists() and not PeriodBalance.objects.exists()


def test_the_month_before_must_be_closed_first(history, hospital, operator):
    later = next_month(THIS_MONTH)
    codes = [b.code for b in month_blockers(hospital, later, now=AFTER_MONTH + datetime.timedelta(days=40))]
    assert "PREVIOUS_MONTH_OPEN" in codes


def test_a_his_backlog_blocks_until_acknowledged(history, hospital, operator, keeper_actor, cath_lab_store):
    unit = Unit.objects.get(serial="P1")
    consume_unit(actor=keeper_actor, hospital=hospital, unit=unit, idempotency_key="use-1",
                 context=ClinicalContext(encounter="ZY0001", department=cath_lab_store.department))
    reconcile_month(hospital)
    assert [b.code for b in month_blockers(hospital, THIS_MONTH, now=AFTER_MONTH)] == ["HIS_BACKLOG"]
    with pytest.raises(Refused):
        close(hospital, operator)

    period = close(hospital, operator, acknowledge_his_backlog=True)
    assert period.acknowledged_his_backlog == ChargeDelivery.objects.count() == 1


def test_only_an_spd_operator_or_admin_closes(history, hospital, keeper, auditor):
    reconcile_month(hospital)
    for user in (keeper, auditor):
        with pytest.raises(Refused) as refused:
            close(hospital, user)
        assert refused.value.code == "NOT_ALLOWED"


def test_the_snapshot_is_the_ledger_fold_and_the_report_is_hashed(history, hospital, operator, warehouse,
                                                                   cath_lab_store, product, lot_product):
    reconcile_month(hospital)
    period = close(hospital, operator)

    start, end = month_bounds(THIS_MONTH)
    stored = sorted((b.product_id, b.location_id, b.lot, b.owner, b.quantity, b.value) for b in period.balances.all())
    folded = sorted((r.product_id, r.location_id, r.lot, r.owner, r.quantity, r.value)
                    for r in ledger_fold(hospital, end, None))
    assert stored == folded
    summed = {}
    for product_id, location_id, _, _, quantity, _ in stored:
        summed[(product_id, location_id)] = summed.get((product_id, location_id), 0) + quantity
    assert period.places_stored
    assert {(row.product_id, row.location_id): row.quantity for row in period.place_balances.all()} == summed
    by_place = {(p, loc, lot): (q, v) for p, loc, lot, _, q, v in stored}
    assert by_place[(product.pk, warehouse.pk, "")] == (1, Decimal("1200.00"))
    assert by_place[(product.pk, cath_lab_store.pk, "")] == (1, Decimal("1200.00"))
    assert by_place[(lot_product.pk, warehouse.pk, "L1")] == (6, Decimal("21.00"))
    assert by_place[(lot_product.pk, cath_lab_store.pk, "L1")] == (4, Decimal("14.00"))
    data = period.report_csv.read()
    assert hashlib.sha256(data).hexdigest() == period.csv_sha256
    assert "进销存月报" in data.decode("utf-8-sig")
    assert period.summary["closing_quantity"] == 12


def test_a_closed_month_cannot_be_closed_twice(history, hospital, operator):
    reconcile_month(hospital)
    close(hospital, operator)
    with translation.override("en"), pytest.raises(Refused) as refused:
        close(hospital, operator)
    assert refused.value.status == 409 and "is already closed" in refused.value.detail


@pytest.mark.postgres
def test_the_trigger_refuses_a_raw_insert_dated_in_a_closed_month(history, hospital, operator, keeper):
    reconcile_month(hospital)
    close(hospital, operator)
    template = Movement.objects.filter(kind=Movement.Kind.TRANSFER).first()
    count = Movement.objects.count()
    with pytest.raises((IntegrityError, InternalError)) as error, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_movement (hospital_id, kind, product_id, unit_id, lot, quantity, from_location_id,"
            " to_location_id, from_status, to_status, from_owner, to_owner, actor_user_id, occurred_at, recorded_at,"
            " reason_code, note, document_type, document_id, idempotency_key)"
            " VALUES (%s, 'TRANSFER', %s, %s, '', 1, %s, %s, 'IN_STOCK', 'IN_STOCK', '', '', %s, now(), now(),"
            " '', '', 'STOCK_ORDER', 1, 'raw-sql')",
            [hospital.pk, template.product_id, template.unit_id, template.to_location_id, template.from_location_id,
             keeper.pk],
        )
    assert "PERIOD_CLOSED" in str(error.value)
    assert Movement.objects.count() == count


@pytest.mark.postgres
def test_the_trigger_refuses_a_raw_consumption_and_settlement_line_in_a_closed_month(history, hospital, operator):
    reconcile_month(hospital)
    close(hospital, operator)
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_hissettlementline (hospital_id, his_line_id, encounter, his_charge_code, nhsa_code,"
            " quantity, unit_price, amount, settled_at, imported_at, import_batch, settled_at_as_sent)"
            " VALUES (%s, 'RAW-1', 'ZY1', 'C1', '', 1, 1, 1, now(), now(), 'raw', '')", [hospital.pk])
    assert not HisSettlementLine.objects.exists()


def test_a_his_line_settled_in_a_closed_month_is_refused(history, hospital, operator):
    reconcile_month(hospital)
    close(hospital, operator)
    row = {"his_line_id": "H1", "encounter": "ZY0009", "his_charge_code": "C1", "quantity": 1, "unit_price": "1",
           "amount": "1", "settled_at": timezone.now().isoformat()}
    with pytest.raises(Refused) as refused:
        import_settlement_lines(hospital=hospital, rows=[row], batch="b1")
    assert refused.value.code == "PERIOD_CLOSED" and refused.value.status == 409
    assert not HisSettlementLine.objects.exists()


def test_a_move_dated_in_a_closed_month_is_refused_before_anything_is_written(history, hospital, operator,
                                                                              keeper_actor, cabinet, lot_product,
                                                                              warehouse):
    reconcile_month(hospital)
    close(hospital, operator)
    before = (Movement.objects.count(), Consumption.objects.count(),
              list(LotBalance.objects.values_list("pk", "quantity").order_by("pk")),
              list(Unit.objects.values_list("pk", "status", "location_id").order_by("pk")))
    with pytest.raises(Refused) as refused:
        transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cabinet, units=[Unit.objects.get(serial="P2")],
                       lots=[LotQuantity(lot_product, "L1", 1, warehouse)], idempotency_key="late")
    assert refused.value.code == "PERIOD_CLOSED" and refused.value.status == 409
    after = (Movement.objects.count(), Consumption.objects.count(),
             list(LotBalance.objects.values_list("pk", "quantity").order_by("pk")),
             list(Unit.objects.values_list("pk", "status", "location_id").order_by("pk")))
    assert after == before


def test_an_open_count_session_of_the_month_blocks_its_close(history, hospital, operator, warehouse):
    from inventory.services.stocktake import cancel, start_count

    reconcile_month(hospital)
    session = start_count(user=operator, hospital=hospital, locations=[warehouse])
    assert [b.code for b in month_blockers(hospital, THIS_MONTH, now=AFTER_MONTH)] == ["COUNT_SESSIONS_OPEN"]
    with pytest.raises(Refused):
        close(hospital, operator)

    cancel(session=session, user=operator)
    assert close(hospital, operator).month == THIS_MONTH
