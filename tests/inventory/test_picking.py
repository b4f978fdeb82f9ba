"""Pick lists with FEFO (拣货), dispatch (配送) and department receipt (科室验收): inventory/services/picking.py."""
import datetime
from decimal import Decimal

import pytest

from inventory.errors import Refused
from inventory.models import (
    Delivery,
    LotBalance,
    Movement,
    PickedItem,
    PickList,
    Requisition,
    StockReservation,
    Unit,
)
from inventory.services import picking
from inventory.services.picking import ItemDecision
from inventory.services.receiving import LineInput
from inventory.services.requisitions import RequestedLine, create_requisition
from tests import factories
from tests.factories import TODAY, gs1_udi
from tests.inventory.test_fefo import receive

pytestmark = pytest.mark.django_db


def days(n):
    return TODAY + datetime.timedelta(days=n)


@pytest.fixture
def stock(keeper_actor, supplier, warehouse, product, lot_product):
    """Lot EARLY (3, 200 days), lot LATE (10, 600 days); units U-SOON (300), U-MID (400), U-LATE (700)."""
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="LATE", expiry=days(600), quantity=10),
        LineInput(Decimal("3.50"), product=lot_product, lot="EARLY", expiry=days(200), quantity=3),
        *[
            LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial=serial, lot=f"B-{serial}", expiry=days(d)))
            for serial, d in (("U-LATE", 700), ("U-MID", 400), ("U-SOON", 300))
        ],
    ], "DN-STOCK")


def requisition_for(nurse, department, *lines):
    return create_requisition(
        user=nurse, department=department, lines=[RequestedLine(p, q) for p, q in lines], submit=True
    )


def lot_code(product, lot, expiry):
    return gs1_udi(product.udi_di, lot=lot, expiry=expiry)


def unit_code(product, serial):
    unit = Unit.objects.get(serial=serial)
    return unit.udi_raw


def new_pick_list(keeper, warehouse, requisition, key="pl-1"):
    return picking.create_pick_list(
        user=keeper, hospital=warehouse.hospital, source_location=warehouse,
        requisition_lines=list(requisition.lines.all()), idempotency_key=key,
    )


def proposal(pick_list):
    return sorted(
        (r.product_id, r.lot, r.quantity) for r in StockReservation.objects.filter(
            is_active=True, holder_type="PICK_LIST_LINE", holder_id__in=pick_list.lines.values("pk"))
    )


def line_state(requisition):
    requisition.refresh_from_db()
    return requisition.status, [
        (line.picked_quantity, line.dispatched_quantity, line.received_quantity, line.discrepancy_quantity)
        for line in requisition.lines.order_by("pk")
    ]


def test_the_whole_loop_splits_a_lot_line_over_two_lots_first_expiry_first(
    keeper, nurse, department, warehouse, cath_lab_store, product, lot_product, stock
):
    requisition = requisition_for(nurse, department, (lot_product, 5), (product, 2))
    pick_list = new_pick_list(keeper, warehouse, requisition)
    assert proposal(pick_list) == sorted([
        (lot_product.pk, "EARLY", 3), (lot_product.pk, "LATE", 2), (product.pk, "B-U-SOON", 1), (product.pk, "B-U-MID", 1),
    ])
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "EARLY", days(200)))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "LATE", days(600)))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=unit_code(product, "U-SOON"))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=unit_code(product, "U-MID"))
    assert sorted(PickedItem.objects.values_list("lot", "quantity", "deviates")) == sorted([
        ("EARLY", 3, False), ("LATE", 2, False), ("B-U-SOON", 1, False), ("B-U-MID", 1, False),
    ])
    assert line_state(requisition)[0] == Requisition.Status.PICKING

    picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="dispatch-1")
    delivery = Delivery.objects.get()
    transit = delivery.in_transit_location
    assert transit.kind == "IN_TRANSIT" and transit.department == department
    legs = Movement.objects.filter(document_type="STOCK_ORDER", document_id=delivery.dispatch_order_id)
    assert {(m.kind, m.from_location_id, m.to_location_id) for m in legs} == {("TRANSFER", warehouse.pk, transit.pk)}
    assert sorted((m.lot, m.quantity) for m in legs) == sorted([("EARLY", 3), ("LATE", 2), ("B-U-SOON", 1), ("B-U-MID", 1)])
    assert line_state(requisition) == (Requisition.Status.DISPATCHED, [(5, 5, 0, 0), (2, 2, 0, 0)])
    assert not StockReservation.objects.filter(is_active=True).exists()

    picking.receive_delivery(user=nurse, delivery=delivery, idempotency_key="receive-1")
    assert line_state(requisition) == (Requisition.Status.RECEIVED, [(5, 5, 5, 0), (2, 2, 2, 0)])
    balances = {(b.location_id, b.lot): b.quantity for b in LotBalance.objects.filter(product=lot_product)}
    assert balances[(cath_lab_store.pk, "EARLY")] == 3 and balances[(cath_lab_store.pk, "LATE")] == 2
    assert balances[(transit.pk, "EARLY")] == 0 and balances[(warehouse.pk, "LATE")] == 8
    assert set(Unit.objects.filter(serial__in=["U-SOON", "U-MID"]).values_list("location_id", flat=True)) == {cath_lab_store.pk}


def test_short_stock_is_a_partial_fulfilment_and_the_rest_stays_open(
    keeper, nurse, department, warehouse, lot_product, stock
):
    requisition = requisition_for(nurse, department, (lot_product, 20))
    pick_list = new_pick_list(keeper, warehouse, requisition)
    assert proposal(pick_list) == [(lot_product.pk, "EARLY", 3), (lot_product.pk, "LATE", 10)]
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "EARLY", days(200)))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "LATE", days(600)), quantity=4)
    picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-1")
    assert line_state(requisition) == (Requisition.Status.PICKING, [(7, 7, 0, 0)])
    assert requisition.lines.get().open_quantity == 13
    # The rest may go on a new pick list: what is left of LATE (6) is proposed.
    second = new_pick_list(keeper, warehouse, requisition, key="pl-2")
    assert proposal(second) == [(lot_product.pk, "LATE", 6)]


def test_a_second_pick_list_never_gets_the_same_requisition_line(keeper, nurse, department, warehouse, lot_product, stock):
    requisition = requisition_for(nurse, department, (lot_product, 2))
    new_pick_list(keeper, warehouse, requisition)
    with pytest.raises(Refused) as refused:
        new_pick_list(keeper, warehouse, requisition, key="pl-2")
    assert refused.value.code == "PICK_LINE_ON_ANOTHER_LIST" and refused.value.status == 409
    assert PickList.objects.count() == 1


def test_two_pick_lists_are_proposed_different_stock(keeper, nurse, department, warehouse, product, lot_product, stock):
    first = new_pick_list(keeper, warehouse, requisition_for(nurse, department, (lot_product, 4), (product, 1)))
    second = new_pick_list(keeper, warehouse, requisition_for(nurse, department, (lot_product, 4), (product, 1)), key="pl-2")
    assert proposal(first) == sorted([(lot_product.pk, "EARLY", 3), (lot_product.pk, "LATE", 1), (product.pk, "B-U-SOON", 1)])
    assert proposal(second) == sorted([(lot_product.pk, "LATE", 4), (product.pk, "B-U-MID", 1)])
    with pytest.raises(Refused) as refused:
        picking.confirm_pick_scan(user=keeper, pick_list=second, code=unit_code(product, "U-SOON"))
    assert refused.value.code == "PICK_SCAN_RESERVED"


def test_a_later_expiring_lot_than_proposed_is_refused_an_earlier_or_same_one_is_taken_and_recorded(
    keeper, keeper_actor, supplier, nurse, department, warehouse, lot_product, stock
):
    requisition = requisition_for(nurse, department, (lot_product, 2))
    pick_list = new_pick_list(keeper, warehouse, requisition)
    assert proposal(pick_list) == [(lot_product.pk, "EARLY", 2)]
    with pytest.raises(Refused) as refused:
        picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "LATE", days(600)))
    assert refused.value.code == "PICK_SCAN_NOT_FEFO"
    assert not PickedItem.objects.exists()
    # Lot SAME expires on the same day as EARLY: an acceptable substitute, recorded as such.
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="SAME", expiry=days(200), quantity=5)], "DN-SAME")
    picked = picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "SAME", days(200)), quantity=2)
    assert (picked.lot, picked.quantity, picked.deviates, picked.proposed_lot) == ("SAME", 2, True, "EARLY")
    assert proposal(pick_list) == [(lot_product.pk, "SAME", 2)]


def test_a_unit_with_the_same_expiry_may_replace_the_proposed_one(
    keeper, keeper_actor, supplier, nurse, department, warehouse, product, stock
):
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="U-TWIN", lot="B-TWIN", expiry=days(300)))
    ], "DN-TWIN")
    pick_list = new_pick_list(keeper, warehouse, requisition_for(nurse, department, (product, 1)))
    proposed = StockReservation.objects.get(is_active=True).unit.serial
    other = "U-TWIN" if proposed == "U-SOON" else "U-SOON"
    picked = picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=unit_code(product, other))
    assert picked.deviates and picked.unit.serial == other
    with pytest.raises(Refused) as refused:
        picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=unit_code(product, proposed))
    assert refused.value.code == "PICK_SCAN_NOT_ON_LIST"


@pytest.mark.parametrize("case", ["other_product", "expired", "quarantined", "elsewhere", "already_picked", "garbage"])
def test_a_wrong_scan_is_refused_clearly_and_records_nothing(
    case, keeper, keeper_actor, supplier, nurse, department, hospital, warehouse, cath_lab_store, product, lot_product,
    stock,
):
    pick_list = new_pick_list(keeper, warehouse, requisition_for(nurse, department, (product, 2)))
    code = unit_code(product, "U-SOON")
    expected = {
        "other_product": "PICK_SCAN_NOT_ON_LIST", "expired": "UNIT_EXPIRED_LOCKED", "garbage": "UDI_UNPARSEABLE",
        "quarantined": "QUARANTINE_RELEASE_REQUIRED", "elsewhere": "PICK_SCAN_NOT_AT_SOURCE",
        "already_picked": "PICK_SCAN_ALREADY_PICKED",
    }[case]
    if case == "other_product":
        code = lot_code(lot_product, "EARLY", days(200))
    elif case == "expired":
        Unit.objects.filter(serial="U-SOON").update(expiry=TODAY - datetime.timedelta(days=1))
    elif case == "garbage":
        code = "not a code"
    elif case in ("quarantined", "elsewhere"):
        kind = "QUARANTINE" if case == "quarantined" else "DEPARTMENT_STORE"
        place = factories.LocationFactory(hospital=hospital, code=f"X-{case}", kind=kind)
        receive(keeper_actor, supplier, place, [
            LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="U-AWAY", expiry=days(100)))], "DN-AWAY")
        code = unit_code(product, "U-AWAY")
    elif case == "already_picked":
        picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=code)
    before = PickedItem.objects.count()
    with pytest.raises(Refused) as refused:
        picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=code)
    assert refused.value.code == expected
    assert PickedItem.objects.count() == before


def test_a_pick_list_is_dispatched_once_and_a_replay_writes_nothing(keeper, nurse, department, warehouse, lot_product, stock):
    pick_list = new_pick_list(keeper, warehouse, requisition_for(nurse, department, (lot_product, 2)))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "EARLY", days(200)))
    picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-1")
    movements = Movement.objects.count()
    assert picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-1").status == "DISPATCHED"
    with pytest.raises(Refused) as refused:
        picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-2")
    assert refused.value.code == "PICK_LIST_STATE" and refused.value.status == 409
    assert Movement.objects.count() == movements and Delivery.objects.count() == 1


def test_nothing_picked_cannot_be_dispatched(keeper, nurse, department, warehouse, lot_product, stock):
    pick_list = new_pick_list(keeper, warehouse, requisition_for(nurse, department, (lot_product, 2)))
    with pytest.raises(Refused) as refused:
        picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-1")
    assert refused.value.code == "PICK_NOTHING_PICKED"


@pytest.fixture
def delivered(keeper, nurse, department, warehouse, product, lot_product, stock):
    requisition = requisition_for(nurse, department, (lot_product, 5), (product, 1))
    pick_list = new_pick_list(keeper, warehouse, requisition)
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "EARLY", days(200)))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "LATE", days(600)))
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=unit_code(product, "U-SOON"))
    picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-1")
    return requisition, Delivery.objects.get()


def test_receipt_with_a_damaged_unit_sent_back_and_a_short_quantity_written_off(
    nurse, warehouse, cath_lab_store, delivered
):
    requisition, delivery = delivered
    items = {(item.lot, item.unit_id is not None): item for item in delivery.items.all()}
    unit_item, late_item = items[("B-U-SOON", True)], items[("LATE", False)]
    picking.receive_delivery(user=nurse, delivery=delivery, idempotency_key="r-1", decisions={
        unit_item.pk: ItemDecision(received=0, discrepancy="DAMAGED", action="RETURNED", reason="包装破损"),
        late_item.pk: ItemDecision(received=1, discrepancy="SHORT", action="WRITTEN_OFF", reason="少送1"),
    })
    delivery.refresh_from_db()
    assert delivery.status == "RECEIVED"
    assert Unit.objects.get(serial="U-SOON").location == warehouse
    scrap = Movement.objects.get(kind="SCRAP")
    assert (scrap.lot, scrap.quantity, scrap.reason_code) == ("LATE", 1, "RECEIPT_DISCREPANCY")
    assert LotBalance.objects.get(location=cath_lab_store, lot="LATE").quantity == 1
    assert LotBalance.objects.get(location=delivery.in_transit_location, lot="LATE").quantity == 0
    assert line_state(requisition) == (Requisition.Status.RECEIVED, [(5, 5, 4, 1), (1, 1, 0, 1)])


def test_a_delivery_is_received_once(nurse, delivered):
    _, delivery = delivered
    picking.receive_delivery(user=nurse, delivery=delivery, idempotency_key="r-1")
    with pytest.raises(Refused) as refused:
        picking.receive_delivery(user=nurse, delivery=delivery, idempotency_key="r-2")
    assert refused.value.code == "DELIVERY_ALREADY_RECEIVED" and refused.value.status == 409


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        (ItemDecision(received=-1), "received"), (ItemDecision(received=1.5), "received"),
        (ItemDecision(received=99), "received"), (ItemDecision(received=1), "discrepancy"),
        (ItemDecision(received=1, discrepancy="SHORT", action="RETURNED"), "reason"),
        (ItemDecision(received=1, discrepancy="LOST", action="RETURNED", reason="x"), "discrepancy"),
    ],
)
def test_a_bad_receipt_decision_is_a_400_naming_the_field_and_writes_nothing(nurse, delivered, decision, field):
    _, delivery = delivered
    item = delivery.items.filter(unit__isnull=True).order_by("pk").last()
    movements = Movement.objects.count()
    with pytest.raises(Refused) as refused:
        picking.receive_delivery(user=nurse, delivery=delivery, idempotency_key="r-1", decisions={item.pk: decision})
    assert refused.value.status == 400
    assert refused.value.problems[0].params["field"] == f"items[{item.pk}].{field}"
    delivery.refresh_from_db()
    assert delivery.status == "IN_TRANSIT" and Movement.objects.count() == movements


def test_a_nurse_of_another_department_cannot_receive(hospital, delivered):
    _, delivery = delivered
    other = factories.DepartmentFactory(hospital=hospital, code="ICU")
    stranger = factories.UserFactory(username="nurse2", hospital=hospital, roles=["nurse"])
    stranger.departments.add(other)
    with pytest.raises(Refused) as refused:
        picking.receive_delivery(user=stranger, delivery=delivery, idempotency_key="r-1")
    assert refused.value.status == 403


def test_zero_stock_department_receives_on_dispatch_with_both_legs_in_the_ledger(
    keeper, nurse, department, warehouse, cath_lab_store, lot_product, stock
):
    department.zero_stock = True
    department.save()
    requisition = requisition_for(nurse, department, (lot_product, 2))
    pick_list = new_pick_list(keeper, warehouse, requisition)
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=lot_code(lot_product, "EARLY", days(200)))
    picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key="d-1")
    delivery = Delivery.objects.get()
    assert delivery.status == "RECEIVED" and delivery.zero_stock
    legs = Movement.objects.filter(kind="TRANSFER", lot="EARLY").order_by("pk")
    transit = delivery.in_transit_location
    assert [(m.from_location_id, m.to_location_id, m.quantity) for m in legs] == [
        (warehouse.pk, transit.pk, 2), (transit.pk, cath_lab_store.pk, 2),
    ]
    assert line_state(requisition) == (Requisition.Status.RECEIVED, [(2, 2, 2, 0)])


def test_a_pick_list_with_nothing_picked_can_be_cancelled_and_its_stock_is_free_again(
    keeper, nurse, department, warehouse, lot_product, stock
):
    requisition = requisition_for(nurse, department, (lot_product, 2))
    pick_list = new_pick_list(keeper, warehouse, requisition)
    picking.cancel_pick_list(user=keeper, pick_list=pick_list)
    assert not StockReservation.objects.filter(is_active=True).exists()
    assert new_pick_list(keeper, warehouse, requisition, key="pl-2").status == "OPEN"


def test_after_dispatch_receipt_return_and_write_off_the_reconciliation_balances(
    nurse, warehouse, cath_lab_store, delivered
):
    from django.utils import timezone

    from inventory.services.reconciliation import run_reconciliation

    requisition, delivery = delivered
    late = delivery.items.get(lot="LATE")
    unit_item = delivery.items.get(unit__isnull=False)
    picking.receive_delivery(user=nurse, delivery=delivery, idempotency_key="r-1", decisions={
        late.pk: ItemDecision(received=1, discrepancy="DAMAGED", action="RETURNED", reason="包装破损"),
        unit_item.pk: ItemDecision(received=0, discrepancy="SHORT", action="WRITTEN_OFF", reason="未到"),
    })
    today = timezone.localdate()
    run = run_reconciliation(hospital=warehouse.hospital, period_start=today, period_end=today)
    assert not run.findings.filter(kind="INVENTORY_MISMATCH").exists()
    assert Movement.objects.filter(kind="TRANSFER", to_location=delivery.in_transit_location).count() == 3
    assert Movement.objects.filter(kind="TRANSFER", from_location=delivery.in_transit_location).count() == 3
    assert Movement.objects.filter(kind="SCRAP", from_location=delivery.in_transit_location).count() == 1
    assert run.findings.count() == run.findings.exclude(kind="INVENTORY_MISMATCH").count()
