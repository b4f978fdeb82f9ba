"""The monthly close over the API: the month list, closing with a review of its blockers, the 月报;
every stock-writing endpoint refuses a date inside a closed month and writes nothing; dated entry
(`occurred_at`) in the open period, and the dates that contradict the ledger."""
import datetime
import hashlib
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.models import (
    Charge,
    ClosedPeriod,
    Consumption,
    HisSettlementLine,
    IdempotencyRecord,
    LotBalance,
    Movement,
    StockOrder,
    Unit,
)
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.period_close import close_month, next_month
from inventory.services.receiving import LineInput, receive_delivery_note
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import TODAY, gs1_udi
from tests.inventory.test_stock_moves import receive_and_accept

pytestmark = pytest.mark.django_db
THIS_MONTH = TODAY.replace(day=1)
AFTER_MONTH = datetime.datetime.combine(next_month(THIS_MONTH), datetime.time(1), tzinfo=timezone.get_default_timezone())


@pytest.fixture
def nurse(hospital, cath_lab_store):
    user = factories.UserFactory(username="nurse1", hospital=hospital, roles=["nurse"])
    user.departments.add(cath_lab_store.department)
    return user


@pytest.fixture
def stock(keeper_actor, supplier, warehouse, cath_lab_store, product, lot_product):
    """Units and a lot in the warehouse and the cath-lab store; one unit used (its charge pending)."""
    units = stock_units(keeper_actor, supplier, warehouse, product, ["C1", "C2", "C3"])
    expiry = TODAY + datetime.timedelta(days=700)
    receive_and_accept(keeper_actor, supplier, warehouse,
                       [LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=expiry, quantity=10)], "DN-L")
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=units[:2],
                   lots=[LotQuantity(lot_product, "L1", 5, warehouse)], idempotency_key="to-store")
    used = consume_unit(actor=keeper_actor, hospital=warehouse.hospital, unit=Unit.objects.get(serial="C1"),
                        idempotency_key="use-c1",
                        context=ClinicalContext(encounter="ZY0001", department=cath_lab_store.department))
    return {"units": units, "used": used}


def written():
    """Everything a refused write must leave as it was."""
    return (
        Movement.objects.count(), Consumption.objects.count(), Charge.objects.count(),
        HisSettlementLine.objects.count(), StockOrder.objects.count(), IdempotencyRecord.objects.count(),
        list(Unit.objects.order_by("pk").values_list("pk", "status", "location_id", "owner")),
        list(LotBalance.objects.order_by("pk").values_list("pk", "quantity")),
        list(Consumption.objects.order_by("pk").values_list("pk", "refunded_at")),
    )


def close_this_month(hospital, operator):
    last = next_month(THIS_MONTH) - datetime.timedelta(days=1)
    run_reconciliation(hospital=hospital, period_start=THIS_MONTH, period_end=last)
    return close_month(hospital=hospital, month=THIS_MONTH, user=operator, now=AFTER_MONTH,
                       acknowledge_his_backlog=True)


def test_every_writing_endpoint_refuses_a_date_in_a_closed_month_and_writes_nothing(
    stock, hospital, operator, keeper, nurse, supplier, warehouse, cath_lab_store, product, lot_product,
):
    # A delivery received (a document, no stock yet) before the close: its acceptance would write stock.
    note = receive_delivery_note(
        actor=Actor(user=keeper),
        hospital=hospital, supplier=supplier, number="DN-LATE", receiving_location=warehouse,
        lines=[LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="LATE1"))], idempotency_key="rcv-late",
    )
    close_this_month(hospital, operator)
    c2, c3 = Unit.objects.get(serial="C2"), Unit.objects.get(serial="C3")
    now = timezone.now().isoformat()
    as_keeper, as_operator, as_nurse = api_client_for(keeper), api_client_for(operator), api_client_for(nurse)
    lot = {"product": lot_product.pk, "lot": "L1", "quantity": 1, "from_location": warehouse.pk}
    attempts = [
        (as_keeper, "/api/v1/transfers/", {"to_location": cath_lab_store.pk, "units": [c3.pk], "lots": [lot]}),
        (as_keeper, "/api/v1/transfers/", {"to_location": cath_lab_store.pk, "units": [c3.pk], "occurred_at": now}),
        (as_keeper, "/api/v1/returns/", {"supplier": supplier.pk, "reason_code": "RECALL", "units": [c3.pk]}),
        (as_keeper, "/api/v1/scraps/", {"reason_code": "DAMAGED", "lots": [lot]}),
        (as_operator, "/api/v1/quarantine-releases/", {"to_location": warehouse.pk, "reason_code": "OK",
                                                       "units": [c3.pk]}),
        (as_nurse, "/api/v1/takes/", {"units": [c2.pk]}),
        (as_nurse, "/api/v1/takes/put-back/", {"units": [c2.pk]}),
        (as_nurse, "/api/v1/consumptions/", {"unit": c2.pk, "encounter": "ZY0002",
                                             "department": cath_lab_store.department.pk}),
        (as_nurse, "/api/v1/consumptions/", {"product": lot_product.pk, "lot": "L1", "quantity": 1,
                                             "location": cath_lab_store.pk, "encounter": "ZY0003",
                                             "department": cath_lab_store.department.pk}),
        (as_nurse, f"/api/v1/consumptions/{stock['used'].pk}/refund/", {"reason_code": "NOT_USED"}),
        (as_operator, f"/api/v1/delivery-notes/{note.pk}/accept/", {"accept_unscanned": True,
                                                                   "unscanned_reason": "label torn"}),
        (as_operator, "/api/v1/his/settlements/", {"batch": "late", "lines": [{
            "his_line_id": "H1", "encounter": "ZY0001", "his_charge_code": product.his_charge_code, "quantity": 1,
            "unit_price": "1200.00", "amount": "1200.00", "settled_at": now}]}),
    ]
    before = written()
    for number, (client, url, body) in enumerate(attempts):
        response = client.post(url, {**body, "idempotency_key": f"late-{number}"}, format="json")
        assert response.status_code == 409, (url, response.status_code, response.json())
        assert "PERIOD_CLOSED" in {response.json()["code"], *(p["code"] for p in response.json()["problems"])}, url
        assert written() == before, url


def test_the_month_list_the_review_and_the_report(stock, hospital, operator, auditor):
    as_operator, as_auditor = api_client_for(operator), api_client_for(auditor)
    months = as_auditor.get("/api/v1/periods/")
    assert months.status_code == 200
    current = months.json()[0]
    assert (current["month"], current["state"]) == (THIS_MONTH.isoformat(), "open")
    assert {b["code"] for b in current["blockers"]} >= {"MONTH_NOT_OVER", "DAYS_NOT_RECONCILED", "HIS_BACKLOG"}

    refused = as_operator.post("/api/v1/periods/close/", {"month": THIS_MONTH.isoformat()}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "PERIOD_NOT_CLOSABLE")
    assert as_auditor.post("/api/v1/periods/close/", {"month": THIS_MONTH.isoformat()},
                           format="json").status_code == 403
    assert not ClosedPeriod.objects.exists()

    period = close_this_month(hospital, operator)
    listed = as_auditor.get("/api/v1/periods/").json()[0]
    assert (listed["state"], listed["closed"]["id"], listed["blockers"]) == ("closed", period.pk, [])
    report = as_auditor.get(f"/api/v1/periods/{period.pk}/report.csv")
    data = b"".join(report.streaming_content)
    assert report.status_code == 200 and report["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()


def test_a_paper_record_is_entered_with_its_date_and_the_time_it_was_recorded(stock, keeper, cath_lab_store, warehouse):
    c3 = Unit.objects.get(serial="C3")
    received = Movement.objects.filter(unit=c3).latest("occurred_at").occurred_at
    happened = received + datetime.timedelta(milliseconds=5)
    response = api_client_for(keeper).post("/api/v1/transfers/", {
        "to_location": cath_lab_store.pk, "units": [c3.pk], "occurred_at": happened.isoformat(),
        "idempotency_key": "paper-1"}, format="json")
    assert response.status_code == 201, response.json()
    order = StockOrder.objects.get(pk=response.json()["id"])
    movement = Movement.objects.get(unit=c3, kind=Movement.Kind.TRANSFER)
    assert order.occurred_at == movement.occurred_at == happened
    assert movement.recorded_at > happened and order.recorded_at > happened


def test_dates_that_contradict_the_ledger_or_lie_ahead_are_refused(stock, keeper, nurse, cath_lab_store, warehouse,
                                                                    lot_product):
    as_keeper, as_nurse = api_client_for(keeper), api_client_for(nurse)
    c2 = Unit.objects.get(serial="C2")
    moved_in = Movement.objects.filter(unit=c2).latest("occurred_at").occurred_at
    before = written()

    early_use = as_nurse.post("/api/v1/consumptions/", {
        "unit": c2.pk, "encounter": "ZY0009", "department": cath_lab_store.department.pk, "idempotency_key": "u",
        "occurred_at": (moved_in - datetime.timedelta(minutes=5)).isoformat()}, format="json")
    assert (early_use.status_code, early_use.json()["code"]) == (409, "HISTORY_CONTRADICTED")

    first_receipt = Movement.objects.filter(lot="L1").earliest("occurred_at").occurred_at
    early_lot = as_keeper.post("/api/v1/transfers/", {
        "to_location": cath_lab_store.pk, "lots": [{"product": lot_product.pk, "lot": "L1", "quantity": 1,
                                                    "from_location": warehouse.pk}],
        "occurred_at": (first_receipt - datetime.timedelta(days=1)).isoformat(), "idempotency_key": "l"}, format="json")
    assert (early_lot.status_code, early_lot.json()["code"]) == (409, "HISTORY_CONTRADICTED")

    ahead = as_keeper.post("/api/v1/transfers/", {
        "to_location": warehouse.pk, "units": [c2.pk], "idempotency_key": "f",
        "occurred_at": (timezone.now() + datetime.timedelta(hours=1)).isoformat()}, format="json")
    assert (ahead.status_code, ahead.json()["code"]) == (400, "OCCURRED_IN_FUTURE")

    typo = as_keeper.post("/api/v1/transfers/", {
        "to_location": warehouse.pk, "units": [c2.pk], "idempotency_key": "y",
        "occurred_at": "0001-01-01T00:00:00+08:00"}, format="json")
    assert typo.status_code == 400
    assert written() == before
