"""Stock leaves quarantine only by a release: a quality decision with a reason, by an SPD operator or
an administrator, recorded as its own movement — never by an ordinary transfer."""
import datetime
from decimal import Decimal

import pytest

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import LotBalance, LotCostLayer, Movement, StockOrder, UnitStatus
from inventory.services.cabinets import take_by_scan
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import (
    LotQuantity,
    release_from_quarantine,
    return_to_supplier,
    scrap,
    transfer_stock,
    transfer_units_each,
)
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import TODAY

pytestmark = pytest.mark.django_db


@pytest.fixture
def quarantine(hospital):
    return factories.LocationFactory(hospital=hospital, code="QUAR", name="隔离区", kind="QUARANTINE")


@pytest.fixture
def operator_actor(operator):
    return Actor(user=operator)


@pytest.fixture
def quarantined_unit(keeper_actor, supplier, warehouse, product, quarantine):
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["Q1"])[0]
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=quarantine, units=[unit],
                   idempotency_key="into-quarantine")
    unit.refresh_from_db()
    assert unit.location == quarantine
    return unit


@pytest.fixture
def quarantined_lot(keeper_actor, supplier, warehouse, lot_product, quarantine):
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-Q", receiving_location=warehouse,
        lines=[LineInput(Decimal("3.50"), product=lot_product, lot="LQ", expiry=TODAY + datetime.timedelta(days=500),
                         quantity=6)],
        idempotency_key="rcv-q",
    )
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-q", put_away_to=quarantine)
    return LotBalance.objects.get(lot="LQ", location=quarantine)


def codes(refused: Refused) -> set[str]:
    return {problem.code for problem in refused.problems}


def test_an_ordinary_transfer_out_of_quarantine_is_refused_pointing_to_the_release(
    keeper_actor, quarantined_unit, quarantined_lot, lot_product, quarantine, cath_lab_store
):
    with pytest.raises(Refused) as refused:
        transfer_stock(actor=keeper_actor, hospital=quarantine.hospital, to_location=cath_lab_store,
                       units=[quarantined_unit], lots=[LotQuantity(lot_product, "LQ", 2, quarantine)],
                       idempotency_key="out")
    assert codes(refused.value) == {"QUARANTINE_RELEASE_REQUIRED"}
    assert len(refused.value.problems) == 2
    assert refused.value.status == 409
    assert "解除隔离" in refused.value.detail  # the default language is Chinese
    quarantined_unit.refresh_from_db()
    assert quarantined_unit.location == quarantine
    assert not StockOrder.objects.filter(kind=StockOrder.Kind.TRANSFER, to_location=cath_lab_store).exists()


def test_a_batch_of_scans_and_a_cabinet_take_refuse_a_quarantined_unit(keeper_actor, quarantined_unit, cath_lab_store):
    order, problems = transfer_units_each(actor=keeper_actor, hospital=cath_lab_store.hospital,
                                          to_location=cath_lab_store, units=[quarantined_unit], idempotency_key="each")
    assert order is None
    assert [problem.code for problem in problems[0]] == ["QUARANTINE_RELEASE_REQUIRED"]
    with pytest.raises(Refused) as refused:
        take_by_scan(actor=keeper_actor, hospital=cath_lab_store.hospital, units=[quarantined_unit],
                     idempotency_key="take")
    assert refused.value.code == "QUARANTINE_RELEASE_REQUIRED"


def test_quarantined_stock_may_still_be_returned_or_scrapped(keeper_actor, quarantined_unit, quarantined_lot,
                                                             lot_product, quarantine, supplier):
    return_to_supplier(actor=keeper_actor, hospital=quarantine.hospital, supplier=supplier, reason_code="DEFECT",
                       units=[quarantined_unit], idempotency_key="ret")
    scrap(actor=keeper_actor, hospital=quarantine.hospital, reason_code="CONTAMINATED", idempotency_key="scr",
          lots=[LotQuantity(lot_product, "LQ", 6, quarantine)])
    quarantined_unit.refresh_from_db()
    assert quarantined_unit.status == UnitStatus.RETURNED_TO_SUPPLIER
    assert LotBalance.objects.get(pk=quarantined_lot.pk).quantity == 0


def test_a_release_records_who_decided_and_why_and_puts_stock_back_in_use(
    operator_actor, operator, quarantined_unit, quarantined_lot, lot_product, quarantine, cath_lab_store
):
    order = release_from_quarantine(
        actor=operator_actor, hospital=quarantine.hospital, to_location=cath_lab_store, reason_code="QC_PASSED",
        note="复检合格", units=[quarantined_unit], lots=[LotQuantity(lot_product, "LQ", 4, quarantine)],
        idempotency_key="release",
    )
    assert (order.kind, order.reason_code, order.created_by) == (StockOrder.Kind.QUARANTINE_RELEASE, "QC_PASSED", operator)
    movements = Movement.objects.filter(document_type=Movement.DocumentType.STOCK_ORDER, document_id=order.pk)
    assert {(m.kind, m.reason_code, m.note, m.actor_user_id, m.from_location_id, m.to_location_id) for m in movements} == {
        (Movement.Kind.QUARANTINE_RELEASE, "QC_PASSED", "复检合格", operator.pk, quarantine.pk, cath_lab_store.pk)
    }
    assert movements.count() == 2
    quarantined_unit.refresh_from_db()
    assert (quarantined_unit.status, quarantined_unit.location) == (UnitStatus.IN_STOCK, cath_lab_store)
    assert LotBalance.objects.get(lot="LQ", location=cath_lab_store).quantity == 4
    assert list(LotCostLayer.objects.filter(balance__location=cath_lab_store).values_list("quantity", "unit_cost")) == [
        (4, Decimal("3.50"))
    ]
    again = release_from_quarantine(
        actor=operator_actor, hospital=quarantine.hospital, to_location=cath_lab_store, reason_code="QC_PASSED",
        note="复检合格", units=[quarantined_unit], lots=[LotQuantity(lot_product, "LQ", 4, quarantine)],
        idempotency_key="release",
    )
    assert again.pk == order.pk


@pytest.mark.parametrize(
    ("who", "reason", "to", "code"),
    [
        ("keeper", "QC_PASSED", "store", "QUARANTINE_RELEASE_NOT_AUTHORISED"),
        ("operator", "", "store", "REASON_REQUIRED"),
        ("operator", "QC_PASSED", "quarantine", "RELEASE_INTO_QUARANTINE"),
    ],
)
def test_a_release_needs_an_authorised_person_a_reason_and_a_place_outside_quarantine(
    who, reason, to, code, keeper, operator, quarantined_unit, quarantine, cath_lab_store
):
    actor = Actor(user=keeper if who == "keeper" else operator)
    with pytest.raises(Refused) as refused:
        release_from_quarantine(actor=actor, hospital=quarantine.hospital, reason_code=reason,
                                to_location=cath_lab_store if to == "store" else quarantine,
                                units=[quarantined_unit], idempotency_key="r")
    assert refused.value.code == code
    quarantined_unit.refresh_from_db()
    assert quarantined_unit.location == quarantine


def test_only_stock_in_quarantine_can_be_released(operator_actor, keeper_actor, supplier, warehouse, product,
                                                  cath_lab_store):
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["N1"])[0]
    with pytest.raises(Refused) as refused:
        release_from_quarantine(actor=operator_actor, hospital=warehouse.hospital, to_location=cath_lab_store,
                                reason_code="QC_PASSED", units=[unit], idempotency_key="r")
    assert refused.value.code == "NOT_IN_QUARANTINE"


def test_an_expired_unit_stays_locked_in_quarantine(operator_actor, quarantined_unit, quarantine, cath_lab_store):
    type(quarantined_unit).objects.filter(pk=quarantined_unit.pk).update(expiry=TODAY - datetime.timedelta(days=1))
    with pytest.raises(Refused) as refused:
        release_from_quarantine(actor=operator_actor, hospital=quarantine.hospital, to_location=cath_lab_store,
                                reason_code="QC_PASSED", units=[quarantined_unit], idempotency_key="r")
    assert refused.value.code == "UNIT_EXPIRED_LOCKED"


def test_the_release_api_answers_with_the_order_and_refuses_a_keeper_with_the_code(
    api, operator, quarantined_unit, quarantine, cath_lab_store
):
    body = {"units": [quarantined_unit.pk], "to_location": cath_lab_store.pk, "reason_code": "QC_PASSED",
            "note": "复检合格", "idempotency_key": "api-release"}
    refused = api.post("/api/v1/quarantine-releases/", body, format="json")
    assert (refused.status_code, refused.data["code"]) == (403, "QUARANTINE_RELEASE_NOT_AUTHORISED")

    transfer = api.post("/api/v1/transfers/", {"units": [quarantined_unit.pk], "to_location": cath_lab_store.pk,
                                               "idempotency_key": "api-transfer"}, format="json")
    assert (transfer.status_code, transfer.data["code"]) == (409, "QUARANTINE_RELEASE_REQUIRED")

    released = api_client_for(operator).post("/api/v1/quarantine-releases/", body, format="json")
    assert released.status_code == 201, released.data
    assert released.data["kind"] == "QUARANTINE_RELEASE"
    [movement] = released.data["movements"]
    assert (movement["kind"], movement["reason_code"], movement["actor"]) == (
        "QUARANTINE_RELEASE", "QC_PASSED", operator.username
    )
