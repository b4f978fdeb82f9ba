"""Stock that is already in the hospital: transfer, return to supplier, scrap — and the ledger they write."""
import datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from inventory.errors import Refused
from inventory.models import IdempotencyRecord, LotBalance, LotMovementLayer, Movement, StockOrder, Unit, UnitStatus
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, return_to_supplier, scrap, transfer_stock
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db
PRICE = Decimal("1200.00")
LOT_PRICE = Decimal("3.50")


def receive_and_accept(actor, supplier, location, lines, number):
    note = receive_delivery_note(
        actor=actor, hospital=location.hospital, supplier=supplier, number=number, receiving_location=location,
        lines=lines, idempotency_key=f"rcv-{number}",
    )
    scan_every_line(actor, note)
    return accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


@pytest.fixture
def units(keeper_actor, supplier, warehouse, product):
    """Three stents accepted into the central warehouse (IN_STOCK there)."""
    serials = ["S1", "S2", "S3"]
    lines = [LineInput(PRICE, udi=gs1_udi(product.udi_di, serial=serial)) for serial in serials]
    receive_and_accept(keeper_actor, supplier, warehouse, lines, "DN-UNITS")
    return [Unit.objects.get(serial=serial) for serial in serials]


@pytest.fixture
def unit(units):
    return units[0]


@pytest.fixture
def lot_stock(keeper_actor, supplier, warehouse, lot_product):
    """Ten infusion sets of lot L1 in the central warehouse."""
    expiry = TODAY + datetime.timedelta(days=700)
    line = LineInput(LOT_PRICE, product=lot_product, lot="L1", expiry=expiry, quantity=10)
    receive_and_accept(keeper_actor, supplier, warehouse, [line], "DN-LOTS")
    return LotBalance.objects.get(product=lot_product, lot="L1", location=warehouse)


def quantity_at(product, location, lot="L1"):
    balance = LotBalance.objects.filter(product=product, lot=lot, location=location).first()
    return balance.quantity if balance else None


def ledger_snapshot():
    """Everything a refused request must leave untouched."""
    return (
        list(Movement.objects.values_list("pk", flat=True)),
        list(StockOrder.objects.values_list("pk", flat=True)),
        list(IdempotencyRecord.objects.values_list("pk", flat=True)),
        list(Unit.objects.values_list("pk", "status", "location_id")),
        list(LotBalance.objects.values_list("pk", "quantity")),
    )


def transfer(actor, to, *, key="t-1", **kwargs):
    return transfer_stock(actor=actor, hospital=to.hospital, to_location=to, idempotency_key=key, **kwargs)


# Transfer (移库)

def test_unit_transferred_to_a_department_store_is_in_stock_there(keeper_actor, unit, warehouse, cath_lab_store):
    order = transfer(keeper_actor, cath_lab_store, units=[unit], from_location=warehouse)

    unit.refresh_from_db()
    assert (unit.status, unit.location) == (UnitStatus.IN_STOCK, cath_lab_store)
    assert (order.kind, order.to_location) == (StockOrder.Kind.TRANSFER, cath_lab_store)
    movement = unit.movements.last()
    assert (movement.kind, movement.from_location, movement.to_location) == ("TRANSFER", warehouse, cath_lab_store)
    assert (movement.from_status, movement.to_status) == (UnitStatus.IN_STOCK, UnitStatus.IN_STOCK)


def test_unit_transferred_to_a_smart_cabinet_is_in_the_cabinet(keeper_actor, unit, warehouse, cabinet):
    transfer(keeper_actor, cabinet, units=[unit])

    unit.refresh_from_db()
    assert (unit.status, unit.location) == (UnitStatus.IN_CABINET, cabinet)
    movement = unit.movements.last()
    assert (movement.from_status, movement.to_status) == (UnitStatus.IN_STOCK, UnitStatus.IN_CABINET)


def test_unit_taken_back_out_of_a_cabinet_is_in_stock_again(keeper_actor, unit, cabinet, cath_lab_store):
    transfer(keeper_actor, cabinet, units=[unit], key="in")
    transfer(keeper_actor, cath_lab_store, units=[unit], from_location=cabinet, key="out")

    unit.refresh_from_db()
    assert (unit.status, unit.location) == (UnitStatus.IN_STOCK, cath_lab_store)


def test_unit_not_at_the_scanned_location_is_refused(keeper_actor, unit, cath_lab_store, cabinet):
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cabinet, units=[unit], from_location=cath_lab_store)

    assert (refused.value.code, refused.value.status) == ("UNIT_NOT_AT_LOCATION", 409)
    assert refused.value.problems[0].item == unit.pk
    assert ledger_snapshot() == before


def test_unit_already_at_the_destination_is_refused(keeper_actor, unit, warehouse):
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, warehouse, units=[unit])

    assert (refused.value.code, refused.value.status) == ("ALREADY_AT_LOCATION", 409)
    assert ledger_snapshot() == before


def test_lot_quantity_moves_from_one_balance_to_another(keeper_actor, lot_stock, lot_product, warehouse, cath_lab_store):
    order = transfer(keeper_actor, cath_lab_store, lots=[LotQuantity(lot_product, "L1", 4, warehouse)])
    transfer(keeper_actor, cath_lab_store, lots=[LotQuantity(lot_product, "L1", 3, warehouse)], key="t-2")

    assert (quantity_at(lot_product, warehouse), quantity_at(lot_product, cath_lab_store)) == (3, 7)
    destination = LotBalance.objects.get(product=lot_product, lot="L1", location=cath_lab_store)
    assert (destination.expiry, destination.unit_cost, destination.owner) == (
        lot_stock.expiry, lot_stock.unit_cost, lot_stock.owner
    )
    first = Movement.objects.get(document_type="STOCK_ORDER", document_id=order.pk)
    assert (first.kind, first.unit, first.lot, first.quantity) == ("TRANSFER", None, "L1", 4)
    assert (first.from_location, first.to_location) == (warehouse, cath_lab_store)


def test_insufficient_lot_stock_is_refused_and_nothing_is_written(
    keeper_actor, lot_stock, lot_product, warehouse, cath_lab_store
):
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cath_lab_store, lots=[LotQuantity(lot_product, "L1", 11, warehouse)])

    assert (refused.value.code, refused.value.status) == ("INSUFFICIENT_STOCK", 409)
    assert refused.value.problems[0].params["available"] == 10
    assert ledger_snapshot() == before
    assert quantity_at(lot_product, cath_lab_store) is None

    # The refused request did not use up its idempotency key.
    transfer(keeper_actor, cath_lab_store, lots=[LotQuantity(lot_product, "L1", 10, warehouse)])
    assert (quantity_at(lot_product, warehouse), quantity_at(lot_product, cath_lab_store)) == (0, 10)


def test_two_lines_of_the_same_lot_are_checked_against_the_balance_together(
    keeper_actor, lot_stock, lot_product, warehouse, cath_lab_store
):
    line = LotQuantity(lot_product, "L1", 6, warehouse)
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cath_lab_store, lots=[line, line])

    assert refused.value.code == "INSUFFICIENT_STOCK"
    assert quantity_at(lot_product, warehouse) == 10


def test_lot_that_is_not_at_the_location_is_insufficient_stock(keeper_actor, lot_stock, lot_product, cath_lab_store, cabinet):
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cabinet, lots=[LotQuantity(lot_product, "L1", 1, cath_lab_store)])
    assert refused.value.code == "INSUFFICIENT_STOCK"
    assert refused.value.problems[0].params["available"] == 0


def test_lot_quantity_moved_to_where_it_already_is_is_refused(keeper_actor, lot_stock, lot_product, warehouse):
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, warehouse, lots=[LotQuantity(lot_product, "L1", 3, warehouse)])
    assert refused.value.status == 409
    assert ledger_snapshot() == before


def test_every_problem_of_an_order_is_reported_at_once_and_nothing_moves(
    keeper_actor, units, lot_stock, lot_product, warehouse, cath_lab_store
):
    ready, already_there, scrapped = units
    transfer(keeper_actor, cath_lab_store, units=[already_there], key="before")
    scrap(actor=keeper_actor, hospital=warehouse.hospital, reason_code="DAMAGED", units=[scrapped], idempotency_key="s")
    before = ledger_snapshot()

    with pytest.raises(Refused) as refused:
        transfer(
            keeper_actor, cath_lab_store, units=[ready, already_there, scrapped],
            lots=[LotQuantity(lot_product, "L1", 50, warehouse)],
        )

    problems = {(problem.code, problem.item) for problem in refused.value.problems}
    assert problems == {
        ("ALREADY_AT_LOCATION", already_there.pk), ("ILLEGAL_TRANSITION", scrapped.pk), ("INSUFFICIENT_STOCK", None),
    }
    assert refused.value.status == 409
    assert all(problem.detail for problem in refused.value.problems)
    assert ledger_snapshot() == before
    ready.refresh_from_db()
    assert ready.location == warehouse


def test_malformed_request_lists_every_problem(keeper_actor, unit, lot_product, warehouse, cath_lab_store, other_hospital):
    foreign = factories.LocationFactory(hospital=other_hospital, code="FOREIGN")
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        transfer(
            keeper_actor, cath_lab_store, units=[unit, unit], from_location=foreign,
            lots=[LotQuantity(lot_product, "L1", 0, warehouse)],
        )

    codes = sorted(problem.code for problem in refused.value.problems)
    assert codes == ["NOT_FOUND", "QUANTITY_INVALID", "UNIT_NAMED_TWICE"]
    assert ledger_snapshot() == before


def test_empty_order_is_an_invalid_request(keeper_actor, cath_lab_store):
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cath_lab_store)
    assert (refused.value.code, refused.value.status) == ("NOTHING_SCANNED", 400)


def test_transfer_to_an_inactive_location_is_refused(keeper_actor, unit, cath_lab_store):
    cath_lab_store.is_active = False
    cath_lab_store.save()
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cath_lab_store, units=[unit])
    assert refused.value.code == "LOCATION_INACTIVE"
    unit.refresh_from_db()
    assert unit.status == UnitStatus.IN_STOCK


# Return to supplier (退货)

def test_return_to_supplier_needs_a_reason(keeper_actor, unit, supplier, hospital):
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        return_to_supplier(
            actor=keeper_actor, hospital=hospital, supplier=supplier, reason_code="", units=[unit], idempotency_key="r"
        )
    assert (refused.value.code, refused.value.status) == ("REASON_REQUIRED", 400)
    assert ledger_snapshot() == before


def test_unit_cannot_be_returned_to_another_supplier(keeper_actor, unit, hospital):
    stranger = factories.SupplierFactory()
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        return_to_supplier(
            actor=keeper_actor, hospital=hospital, supplier=stranger, reason_code="RECALL", units=[unit],
            idempotency_key="r",
        )
    assert (refused.value.code, refused.value.status) == ("WRONG_SUPPLIER", 409)
    assert ledger_snapshot() == before


def test_returned_unit_leaves_the_hospital_for_good(keeper_actor, unit, supplier, hospital, warehouse, cath_lab_store):
    order = return_to_supplier(
        actor=keeper_actor, hospital=hospital, supplier=supplier, reason_code="RECALL", note="厂家召回",
        units=[unit], idempotency_key="r",
    )

    unit.refresh_from_db()
    assert (unit.status, unit.location) == (UnitStatus.RETURNED_TO_SUPPLIER, None)
    assert (order.kind, order.supplier, order.reason_code) == (StockOrder.Kind.RETURN_TO_SUPPLIER, supplier, "RECALL")
    movement = unit.movements.last()
    assert (movement.kind, movement.reason_code, movement.note) == ("RETURN_TO_SUPPLIER", "RECALL", "厂家召回")
    assert (movement.from_location, movement.to_location) == (warehouse, None)
    assert (movement.from_status, movement.to_status) == (UnitStatus.IN_STOCK, UnitStatus.RETURNED_TO_SUPPLIER)

    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cath_lab_store, units=[unit], key="after-return")
    assert (refused.value.code, refused.value.status) == ("ILLEGAL_TRANSITION", 409)


def test_lot_quantity_returned_to_supplier_leaves_the_balance(keeper_actor, lot_stock, lot_product, supplier, hospital, warehouse):
    return_to_supplier(
        actor=keeper_actor, hospital=hospital, supplier=supplier, reason_code="OVERSTOCK",
        lots=[LotQuantity(lot_product, "L1", 4, warehouse)], idempotency_key="r",
    )
    assert quantity_at(lot_product, warehouse) == 6
    movement = Movement.objects.filter(kind="RETURN_TO_SUPPLIER").get()
    assert (movement.quantity, movement.from_location, movement.to_location, movement.reason_code) == (
        4, warehouse, None, "OVERSTOCK"
    )


# Scrap (报损)

def test_scrap_needs_a_reason(keeper_actor, unit, hospital):
    before = ledger_snapshot()
    with pytest.raises(Refused) as refused:
        scrap(actor=keeper_actor, hospital=hospital, reason_code="", units=[unit], idempotency_key="s")
    assert (refused.value.code, refused.value.status) == ("REASON_REQUIRED", 400)
    assert ledger_snapshot() == before


def test_scrapped_is_terminal(keeper_actor, unit, supplier, hospital, cath_lab_store):
    scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[unit], idempotency_key="s")
    unit.refresh_from_db()
    assert (unit.status, unit.location) == (UnitStatus.SCRAPPED, None)
    before = ledger_snapshot()

    attempts = [
        lambda: transfer(keeper_actor, cath_lab_store, units=[unit], key="again-1"),
        lambda: scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[unit], idempotency_key="again-2"),
        lambda: return_to_supplier(
            actor=keeper_actor, hospital=hospital, supplier=supplier, reason_code="RECALL", units=[unit],
            idempotency_key="again-3",
        ),
    ]
    for attempt in attempts:
        with pytest.raises(Refused) as refused:
            attempt()
        assert (refused.value.code, refused.value.status) == ("ILLEGAL_TRANSITION", 409)
    assert ledger_snapshot() == before


def test_unit_in_a_cabinet_can_be_scrapped(keeper_actor, unit, hospital, cabinet):
    transfer(keeper_actor, cabinet, units=[unit])
    scrap(actor=keeper_actor, hospital=hospital, reason_code="CONTAMINATED", units=[unit], idempotency_key="s")

    movement = unit.movements.last()
    assert (movement.kind, movement.from_location, movement.from_status, movement.to_status) == (
        "SCRAP", cabinet, UnitStatus.IN_CABINET, UnitStatus.SCRAPPED
    )


def test_scrapped_lot_quantity_leaves_the_balance(keeper_actor, lot_stock, lot_product, hospital, warehouse):
    scrap(
        actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", lots=[LotQuantity(lot_product, "L1", 10, warehouse)],
        idempotency_key="s",
    )
    assert quantity_at(lot_product, warehouse) == 0
    assert Movement.objects.get(kind="SCRAP").to_location is None


# Idempotency

def test_same_key_and_content_returns_the_first_order_and_writes_nothing(keeper_actor, units, cath_lab_store):
    first = transfer(keeper_actor, cath_lab_store, units=units[:2], key="same")
    before = ledger_snapshot()

    again = transfer(keeper_actor, cath_lab_store, units=list(reversed(units[:2])), key="same")

    assert again.pk == first.pk
    assert ledger_snapshot() == before


def test_replay_returns_the_first_order_even_after_the_stock_has_moved_on(keeper_actor, unit, cath_lab_store, cabinet):
    first = transfer(keeper_actor, cath_lab_store, units=[unit], key="first")
    transfer(keeper_actor, cabinet, units=[unit], key="second")
    before = ledger_snapshot()

    assert transfer(keeper_actor, cath_lab_store, units=[unit], key="first").pk == first.pk
    assert ledger_snapshot() == before
    unit.refresh_from_db()
    assert unit.location == cabinet


@pytest.mark.parametrize("change", ["destination", "note", "units", "operation"])
def test_same_key_with_different_content_is_a_conflict(keeper_actor, units, hospital, cath_lab_store, cabinet, change):
    transfer(keeper_actor, cath_lab_store, units=[units[0]], key="k")
    before = ledger_snapshot()

    with pytest.raises(Refused) as refused:
        if change == "destination":
            transfer(keeper_actor, cabinet, units=[units[0]], key="k")
        elif change == "note":
            transfer(keeper_actor, cath_lab_store, units=[units[0]], key="k", note="changed")
        elif change == "units":
            transfer(keeper_actor, cath_lab_store, units=[units[1]], key="k")
        else:
            scrap(actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", units=[units[0]], idempotency_key="k")

    assert (refused.value.code, refused.value.status) == ("IDEMPOTENCY_CONFLICT", 409)
    assert ledger_snapshot() == before


@pytest.mark.parametrize("key", ["", "k" * 129])
def test_idempotency_key_must_be_1_to_128_characters(keeper_actor, unit, cath_lab_store, key):
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, cath_lab_store, units=[unit], key=key)
    assert refused.value.code == "IDEMPOTENCY_KEY_INVALID"


# Hospitals of one alliance do not see each other's stock

def test_location_of_another_hospital_is_not_found(keeper_actor, unit, hospital, warehouse, other_hospital):
    foreign = factories.LocationFactory(hospital=other_hospital, code="FOREIGN")
    before = ledger_snapshot()
    for kwargs in ({"to_location": foreign}, {"to_location": warehouse, "from_location": foreign}):
        with pytest.raises(Refused) as refused:
            transfer_stock(actor=keeper_actor, hospital=hospital, units=[unit], idempotency_key="x", **kwargs)
        assert (refused.value.code, refused.value.status) == ("NOT_FOUND", 404)
    assert ledger_snapshot() == before


def test_unit_of_another_hospital_is_not_found(keeper_actor, unit, supplier, other_hospital):
    foreign_store = factories.LocationFactory(hospital=other_hospital, code="STORE", kind="DEPARTMENT_STORE")
    before = ledger_snapshot()
    attempts = [
        lambda: transfer(keeper_actor, foreign_store, units=[unit]),
        lambda: return_to_supplier(
            actor=keeper_actor, hospital=other_hospital, supplier=supplier, reason_code="RECALL", units=[unit],
            idempotency_key="x",
        ),
        lambda: scrap(actor=keeper_actor, hospital=other_hospital, reason_code="DAMAGED", units=[unit], idempotency_key="y"),
    ]
    for attempt in attempts:
        with pytest.raises(Refused) as refused:
            attempt()
        assert (refused.value.code, refused.value.status) == ("NOT_FOUND", 404)
    assert ledger_snapshot() == before


def test_lot_of_another_hospital_is_not_found(keeper_actor, lot_stock, lot_product, warehouse, other_hospital):
    foreign_store = factories.LocationFactory(hospital=other_hospital, code="STORE", kind="DEPARTMENT_STORE")
    with pytest.raises(Refused) as refused:
        transfer(keeper_actor, foreign_store, lots=[LotQuantity(lot_product, "L1", 1, warehouse)])
    assert refused.value.code == "NOT_FOUND"
    assert quantity_at(lot_product, warehouse) == 10


# What every movement records

def test_each_movement_names_actor_document_times_and_reason(keeper, keeper_actor, units, hospital, cath_lab_store):
    started = timezone.now()
    moved = transfer(keeper_actor, cath_lab_store, units=[units[0]], key="t")
    scrapped = scrap(
        actor=keeper_actor, hospital=hospital, reason_code="DAMAGED", note="包装破损", units=[units[1]],
        idempotency_key="s",
    )
    finished = timezone.now()

    for order, unit, reason in ((moved, units[0], ""), (scrapped, units[1], "DAMAGED")):
        movement = unit.movements.last()
        assert (movement.actor_user, movement.actor_device) == (keeper, None)
        assert (movement.document_type, movement.document_id) == (Movement.DocumentType.STOCK_ORDER, order.pk)
        assert (movement.hospital, movement.product) == (hospital, unit.product)
        assert movement.occurred_at == order.occurred_at
        assert started <= movement.occurred_at <= movement.recorded_at <= finished
        assert movement.reason_code == reason
        assert order.created_by == keeper
    assert units[1].movements.last().note == "包装破损"
    assert moved.pk != scrapped.pk


def test_movements_of_one_order_share_its_document(keeper_actor, units, lot_stock, lot_product, warehouse, cath_lab_store):
    order = transfer(keeper_actor, cath_lab_store, units=units, lots=[LotQuantity(lot_product, "L1", 2, warehouse)])
    movements = Movement.objects.filter(document_type="STOCK_ORDER", document_id=order.pk)
    assert movements.count() == 4
    assert len(set(movements.values_list("idempotency_key", flat=True))) == 4


# The ledger is append-only

def test_a_saved_movement_cannot_be_changed_or_deleted(unit):
    movement = unit.movements.first()
    count = Movement.objects.count()

    movement.note = "rewritten"
    with pytest.raises(TypeError):
        movement.save()
    with pytest.raises(TypeError):
        movement.delete()
    with pytest.raises(TypeError):
        Movement.objects.filter(pk=movement.pk).update(note="rewritten")
    with pytest.raises(TypeError):
        Movement.objects.update(note="rewritten")
    with pytest.raises(TypeError):
        Movement.objects.filter(pk=movement.pk).delete()
    with pytest.raises(TypeError):
        Movement.objects.all().delete()
    with pytest.raises(TypeError):
        unit.movements.all().delete()
    # bulk_update opens an atomic block without a savepoint; its own savepoint keeps the test usable.
    with pytest.raises(TypeError), transaction.atomic():
        Movement.objects.bulk_update([movement], ["note"])

    assert Movement.objects.count() == count
    assert Movement.objects.get(pk=movement.pk).note == ""


def test_a_saved_movement_layer_cannot_be_changed_or_deleted(lot_stock):
    row = LotMovementLayer.objects.first()
    row.quantity = 99
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        row.delete()
    with pytest.raises(TypeError):
        LotMovementLayer.objects.update(quantity=99)
    with pytest.raises(TypeError):
        LotMovementLayer.objects.all().delete()
    assert LotMovementLayer.objects.get(pk=row.pk).quantity != 99
