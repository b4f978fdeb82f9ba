"""Picking and dispatch under real concurrency on PostgreSQL: two pickers never take the same unit
or more of a lot than is on hand, and a requisition is dispatched once."""
import datetime
from collections import Counter
from decimal import Decimal

import pytest

from inventory.errors import Refused
from inventory.models import Delivery, LotBalance, Movement, PickedItem, PickList, StockReservation
from inventory.services import picking
from inventory.services.receiving import LineInput
from inventory.services.requisitions import RequestedLine, create_requisition
from tests import factories
from tests.concurrency import run_together
from tests.factories import TODAY, gs1_udi
from tests.inventory.test_fefo import receive

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def nurse(hospital, cath_lab_store):
    user = factories.UserFactory(username="nurse1", hospital=hospital, roles=["nurse"])
    user.departments.add(cath_lab_store.department)
    return user


def requisition(nurse, department, product, quantity):
    return create_requisition(user=nurse, department=department, lines=[RequestedLine(product, quantity)], submit=True)


def test_eight_pick_lists_created_at_once_never_reserve_more_than_is_on_hand(
    keeper, keeper_actor, supplier, nurse, warehouse, cath_lab_store, lot_product, product
):
    expiry = TODAY + datetime.timedelta(days=300)
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="A", expiry=expiry, quantity=5),
        LineInput(Decimal("3.50"), product=lot_product, lot="B", expiry=expiry + datetime.timedelta(days=9), quantity=4),
        *[LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial=f"S{n}")) for n in range(3)],
    ], "DN-C")
    department = cath_lab_store.department
    requisitions = [
        create_requisition(user=nurse, department=department, submit=True,
                           lines=[RequestedLine(lot_product, 3), RequestedLine(product, 1)])
        for _ in range(8)
    ]

    def create(index):
        return picking.create_pick_list(
            user=keeper, hospital=warehouse.hospital, source_location=warehouse,
            requisition_lines=list(requisitions[index].lines.all()), idempotency_key=f"pl-{index}",
        )

    outcomes = run_together(8, create)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    held = Counter()
    units = []
    for reservation in StockReservation.objects.filter(is_active=True):
        if reservation.unit_id:
            units.append(reservation.unit_id)
        else:
            held[reservation.lot] += reservation.quantity
    assert held == {"A": 5, "B": 4}
    assert len(units) == 3 == len(set(units))


def test_two_pickers_scanning_the_same_unit_and_lot_at_once_pick_each_once(
    keeper, keeper_actor, supplier, nurse, warehouse, cath_lab_store, lot_product, product
):
    expiry = TODAY + datetime.timedelta(days=300)
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="A", expiry=expiry, quantity=4),
        LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="ONE", expiry=expiry)),
    ], "DN-P")
    department = cath_lab_store.department
    lists = []
    for index in range(2):
        req = requisition(nurse, department, lot_product, 4)
        req_unit = requisition(nurse, department, product, 1)
        lists.append(picking.create_pick_list(
            user=keeper, hospital=warehouse.hospital, source_location=warehouse, idempotency_key=f"pl-{index}",
            requisition_lines=list(req.lines.all()) + list(req_unit.lines.all()),
        ))
    # The first list holds all of lot A and the unit; the second was proposed nothing.
    lot_code = gs1_udi(lot_product.udi_di, lot="A", expiry=expiry)
    unit_code = gs1_udi(product.udi_di, serial="ONE", expiry=expiry)

    def pick(index):
        pick_list = lists[index % 2]
        code = lot_code if index < 4 else unit_code
        return picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=code, quantity=4 if index < 4 else None)

    outcomes = run_together(8, pick)
    picked_lot = sum(PickedItem.objects.filter(lot="A").values_list("quantity", flat=True))
    assert picked_lot == 4
    assert PickedItem.objects.filter(unit__serial="ONE").count() == 1
    refusals = {o.code for o in outcomes if isinstance(o, Refused)}
    assert refusals <= {"PICK_SCAN_RESERVED", "PICK_SCAN_ALREADY_PICKED", "PICK_SCAN_NOT_ON_LIST",
                        "PICK_SCAN_QUANTITY_TOO_LARGE"}, outcomes
    assert not [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, Refused)], outcomes


def test_a_requisition_is_dispatched_once_by_eight_requests_with_different_keys(
    keeper, keeper_actor, supplier, nurse, warehouse, cath_lab_store, lot_product
):
    expiry = TODAY + datetime.timedelta(days=300)
    receive(keeper_actor, supplier, warehouse, [
        LineInput(Decimal("3.50"), product=lot_product, lot="A", expiry=expiry, quantity=10)], "DN-D")
    req = requisition(nurse, cath_lab_store.department, lot_product, 6)
    pick_list = picking.create_pick_list(user=keeper, hospital=warehouse.hospital, source_location=warehouse,
                                         requisition_lines=list(req.lines.all()), idempotency_key="pl")
    picking.confirm_pick_scan(user=keeper, pick_list=pick_list, code=gs1_udi(lot_product.udi_di, lot="A", expiry=expiry))

    def send(index):
        return picking.dispatch_pick_list(user=keeper, pick_list=pick_list, idempotency_key=f"d-{index % 3}")

    outcomes = run_together(8, send)
    successes = [o for o in outcomes if isinstance(o, PickList)]
    refused = [o for o in outcomes if isinstance(o, Refused)]
    assert successes and all(o.code == "PICK_LIST_STATE" for o in refused), outcomes
    assert len(successes) + len(refused) == 8
    assert Delivery.objects.count() == 1
    assert Movement.objects.filter(kind="TRANSFER").count() == 1
    req.refresh_from_db()
    assert req.lines.get().dispatched_quantity == 6
    assert LotBalance.objects.get(location=warehouse, lot="A").quantity == 4
