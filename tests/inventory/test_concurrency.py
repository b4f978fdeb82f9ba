"""Stock moves under real concurrency, on the real PostgreSQL: row locks, unique indexes, the trigger.

Each test releases its threads together with a barrier; every thread opens its own connection
(Django connections are per thread) and closes it at the end.
"""
import contextlib
import datetime
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from inventory.errors import Refused
from inventory.models import IdempotencyRecord, LotBalance, LotMovementLayer, Movement, StockOrder, Unit, UnitStatus
from inventory.services import stock as stock_service
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, transfer_stock
from tests.concurrency import run_together
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def receive_and_accept(actor, supplier, location, lines, number):
    note = receive_delivery_note(
        actor=actor, hospital=location.hospital, supplier=supplier, number=number, receiving_location=location,
        lines=lines, idempotency_key=f"rcv-{number}",
    )
    scan_every_line(actor, note)
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


@pytest.fixture
def unit(keeper_actor, supplier, warehouse, product):
    receive_and_accept(
        keeper_actor, supplier, warehouse, [LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="C1"))], "DN-U"
    )
    return Unit.objects.get(serial="C1")


@pytest.fixture
def lot_of_ten(keeper_actor, supplier, warehouse, lot_product):
    expiry = TODAY + datetime.timedelta(days=700)
    line = LineInput(Decimal("3.50"), product=lot_product, lot="L1", expiry=expiry, quantity=10)
    receive_and_accept(keeper_actor, supplier, warehouse, [line], "DN-L")
    return LotBalance.objects.get(product=lot_product, lot="L1", location=warehouse)


def test_one_unit_sent_to_a_store_by_16_requests_at_once_moves_once(keeper_actor, unit, warehouse, cath_lab_store):
    def send(index):
        return transfer_stock(
            actor=keeper_actor, hospital=warehouse.hospital, units=[unit], from_location=warehouse,
            to_location=cath_lab_store, idempotency_key=f"race-{index}",
        )

    outcomes = run_together(16, send)

    orders = [outcome for outcome in outcomes if isinstance(outcome, StockOrder)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert (len(orders), len(refusals)) == (1, 15), outcomes
    assert {refusal.status for refusal in refusals} == {409}
    assert {refusal.code for refusal in refusals} <= {"UNIT_NOT_AT_LOCATION", "ALREADY_AT_LOCATION"}
    transfers = Movement.objects.filter(unit=unit, kind=Movement.Kind.TRANSFER)
    assert transfers.count() == 1
    assert transfers.get().document_id == orders[0].pk
    unit.refresh_from_db()
    assert (unit.status, unit.location) == (UnitStatus.IN_STOCK, cath_lab_store)
    assert StockOrder.objects.count() == 1
    assert IdempotencyRecord.objects.filter(key__startswith="race-").count() == 1


def test_twenty_requests_for_one_of_ten_never_oversell(keeper_actor, lot_of_ten, lot_product, warehouse, cath_lab_store):
    def take_one(index):
        return transfer_stock(
            actor=keeper_actor, hospital=warehouse.hospital, lots=[LotQuantity(lot_product, "L1", 1, warehouse)],
            to_location=cath_lab_store, idempotency_key=f"one-{index}",
        )

    outcomes = run_together(20, take_one)

    orders = [outcome for outcome in outcomes if isinstance(outcome, StockOrder)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert (len(orders), len(refusals)) == (10, 10), outcomes
    assert Counter(refusal.code for refusal in refusals) == {"INSUFFICIENT_STOCK": 10}
    destination = LotBalance.objects.get(product=lot_product, lot="L1", location=cath_lab_store)
    lot_of_ten.refresh_from_db()
    assert (lot_of_ten.quantity, destination.quantity) == (0, 10)
    assert not LotBalance.objects.filter(quantity__lt=0).exists()
    assert Movement.objects.filter(kind=Movement.Kind.TRANSFER, product=lot_product).count() == 10
    assert StockOrder.objects.count() == 10


def test_eight_retries_with_one_key_make_one_order(keeper_actor, unit, warehouse, cath_lab_store):
    def retry(index):
        return transfer_stock(
            actor=keeper_actor, hospital=warehouse.hospital, units=[unit], from_location=warehouse,
            to_location=cath_lab_store, idempotency_key="one-key",
        )

    outcomes = run_together(8, retry)

    assert all(isinstance(outcome, StockOrder) for outcome in outcomes), outcomes
    assert len({outcome.pk for outcome in outcomes}) == 1
    assert StockOrder.objects.count() == 1
    assert Movement.objects.filter(unit=unit, kind=Movement.Kind.TRANSFER).count() == 1
    assert IdempotencyRecord.objects.filter(key="one-key").count() == 1
    unit.refresh_from_db()
    assert unit.location == cath_lab_store


def test_raw_sql_cannot_change_the_ledger(unit):
    before = list(Movement.objects.order_by("pk").values_list("pk", "note", "kind"))
    assert before

    for statement in ("UPDATE inventory_movement SET note = 'x'", "DELETE FROM inventory_movement"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    assert list(Movement.objects.order_by("pk").values_list("pk", "note", "kind")) == before


def test_raw_sql_cannot_change_which_cost_layers_a_movement_moved(lot_of_ten):
    before = list(LotMovementLayer.objects.order_by("pk").values_list("pk", "quantity", "unit_cost"))
    assert before

    for statement in ("UPDATE inventory_lotmovementlayer SET quantity = 99", "DELETE FROM inventory_lotmovementlayer"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    assert list(LotMovementLayer.objects.order_by("pk").values_list("pk", "quantity", "unit_cost")) == before


def test_opposite_transfers_of_one_lot_both_succeed(
    keeper_actor, lot_of_ten, lot_product, warehouse, cath_lab_store, monkeypatch
):
    transfer_stock(
        actor=keeper_actor, hospital=warehouse.hospital, lots=[LotQuantity(lot_product, "L1", 5, warehouse)],
        to_location=cath_lab_store, idempotency_key="setup",
    )
    # Hold both requests right after they locked their balances, as a busy server may. Once the
    # destination is locked there too, the second request waits for the first instead: the barrier
    # then times out and both go on.
    both_locked = threading.Barrier(2)
    lock_balances = stock_service._lock_balances

    def lock_then_wait(lots, to_location):
        balances = lock_balances(lots, to_location)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_locked.wait(timeout=10)
        return balances

    monkeypatch.setattr(stock_service, "_lock_balances", lock_then_wait)
    routes = [(warehouse, cath_lab_store), (cath_lab_store, warehouse)]

    def send(index):
        source, destination = routes[index]
        return transfer_stock(
            actor=keeper_actor, hospital=warehouse.hospital, lots=[LotQuantity(lot_product, "L1", 1, source)],
            to_location=destination, idempotency_key=f"cross-{index}",
        )

    outcomes = run_together(2, send)

    assert all(isinstance(outcome, StockOrder) for outcome in outcomes), outcomes
    quantities = dict(LotBalance.objects.filter(product=lot_product).values_list("location_id", "quantity"))
    assert quantities == {warehouse.pk: 5, cath_lab_store.pk: 5}
