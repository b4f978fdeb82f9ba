"""Races on the real PostgreSQL: row locks decide, and the database constraints back them up."""
import datetime
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Charge, Consumption, LotBalance, LotCostLayer, LotMovementLayer, Movement, Unit
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import transfer_stock
from tests import factories
from tests.concurrency import run_together
from tests.conftest import stock_units
from tests.factories import TODAY

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def ward_nurse(store):
    """A nurse of the store's department (a nurse uses items of her own departments only)."""
    nurse = factories.UserFactory(hospital=store.hospital, roles=["nurse"])
    nurse.departments.add(store.department)
    return nurse


def test_two_nurses_using_the_same_unit_at_once_exactly_one_succeeds(
    hospital, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["RACE"])[0]
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[unit],
                   idempotency_key="to-store")
    nurses = [ward_nurse(cath_lab_store) for _ in range(2)]
    barrier = threading.Barrier(len(nurses))
    outcomes: list[str] = []

    def use(nurse, n):
        try:
            barrier.wait()
            consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=unit, idempotency_key=f"nurse-{n}",
                         context=ClinicalContext(encounter=f"ZY{n}", department=cath_lab_store.department))
            outcomes.append("used")
        except Refused as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=use, args=(nurse, n)) for n, nurse in enumerate(nurses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["ALREADY_CONSUMED", "used"]
    assert Consumption.objects.count() == 1
    assert Charge.objects.count() == 1
    assert Movement.objects.filter(kind="CONSUME").count() == 1
    assert Unit.objects.get(pk=unit.pk).status == "CONSUMED"


def test_eight_retries_of_one_use_with_one_key_make_one_use_and_all_answer_it(
    hospital, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    """The idempotency record of a use is written after the work (one statement less): the unit's
    lock serialises the retries, which find it used and then the first's record."""
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["RETRY"])[0]
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[unit],
                   idempotency_key="to-store")
    nurse = ward_nurse(cath_lab_store)
    context = ClinicalContext(encounter="ZY-RETRY", department=cath_lab_store.department)

    outcomes = run_together(8, lambda n: consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=unit,
                                                      context=context, idempotency_key="one-key").pk)

    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    assert len(set(outcomes)) == 1
    assert (Consumption.objects.count(), Charge.objects.count()) == (1, 1)
    assert Movement.objects.filter(kind="CONSUME").count() == 1


def test_one_key_reused_for_another_use_at_once_is_409_for_all_but_one(
    hospital, keeper_actor, supplier, warehouse, product, cath_lab_store
):
    units = stock_units(keeper_actor, supplier, warehouse, product, ["K1", "K2", "K3", "K4"])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=units,
                   idempotency_key="to-store")
    nurse = ward_nurse(cath_lab_store)
    context = ClinicalContext(encounter="ZY-KEY", department=cath_lab_store.department)

    outcomes = run_together(4, lambda n: consume_unit(actor=Actor(user=nurse), hospital=hospital, unit=units[n],
                                                      context=context, idempotency_key="shared-key").pk)

    used = [outcome for outcome in outcomes if isinstance(outcome, int)]
    refused = [outcome.code for outcome in outcomes if isinstance(outcome, Refused)]
    assert (len(used), sorted(refused)) == (1, ["IDEMPOTENCY_CONFLICT"] * 3), outcomes
    assert Consumption.objects.count() == 1
    assert Unit.objects.filter(status="CONSUMED").count() == 1


def test_two_nurses_using_the_same_lot_at_once_draw_each_layer_once(
    hospital, keeper_actor, operator, supplier, warehouse, lot_agreement, lot_product, cath_lab_store
):
    """Six of a lot at 3.50 then six at 3.80 in the store; two uses of five each, at the same moment.

    The balance lock orders them: the first takes five at 3.50, the second the last one at 3.50 and
    four at 3.80 — never the same layer quantity twice, never a layer below zero."""
    operator_actor = Actor(user=operator)
    receipts = []
    for number, price in (("DN-C1", Decimal("3.50")), ("DN-C2", Decimal("3.80"))):
        lot_agreement.unit_price = price
        lot_agreement.save()
        note = receive_delivery_note(
            actor=operator_actor, hospital=hospital, supplier=supplier, number=number,
            receiving_location=cath_lab_store, idempotency_key=f"rcv-{number}",
            lines=[LineInput(price, product=lot_product, lot="LC", expiry=TODAY + datetime.timedelta(days=500),
                             quantity=6)],
        )
        accept_delivery_note(actor=operator_actor, note=note, idempotency_key=f"acc-{number}")
        receipts.append(Movement.objects.get(kind=Movement.Kind.RECEIPT, document_id=note.pk).pk)
    nurses = [ward_nurse(cath_lab_store) for _ in range(2)]

    def use(index):
        return consume_lot(
            actor=Actor(user=nurses[index]), hospital=hospital, product=lot_product, lot="LC", quantity=5,
            location=cath_lab_store, idempotency_key=f"lot-nurse-{index}",
            context=ClinicalContext(encounter=f"ZYL{index}", department=cath_lab_store.department),
        )

    outcomes = run_together(2, use)

    assert all(isinstance(outcome, Consumption) for outcome in outcomes), outcomes
    billed = sorted(
        [(part.quantity, part.unit_price) for outcome in outcomes
         for part in Consumption.objects.filter(Q(pk=outcome.pk) | Q(part_of=outcome.pk)).order_by("pk")]
    )
    assert billed == [(1, Decimal("3.50")), (4, Decimal("3.80")), (5, Decimal("3.50"))]
    assert sum(Charge.objects.values_list("amount", flat=True)) == 6 * Decimal("3.50") + 4 * Decimal("3.80")
    layers = dict(LotCostLayer.objects.filter(balance__location=cath_lab_store).values_list("receipt_id", "quantity"))
    assert layers == {receipts[0]: 0, receipts[1]: 2}
    assert LotBalance.objects.get(lot="LC", location=cath_lab_store).quantity == 2
    consumed = LotMovementLayer.objects.filter(movement__kind=Movement.Kind.CONSUME)
    assert sum(consumed.values_list("quantity", flat=True)) == 10


def test_more_uses_of_a_lot_than_it_holds_never_oversell_a_layer(
    hospital, keeper_actor, supplier, warehouse, lot_product, cath_lab_store
):
    note = receive_delivery_note(
        actor=keeper_actor, hospital=hospital, supplier=supplier, number="DN-C3", receiving_location=cath_lab_store,
        idempotency_key="rcv-c3",
        lines=[LineInput(Decimal("3.50"), product=lot_product, lot="LD", expiry=TODAY + datetime.timedelta(days=500),
                         quantity=4)],
    )
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-c3")
    nurses = [ward_nurse(cath_lab_store) for _ in range(6)]

    def use(index):
        return consume_lot(
            actor=Actor(user=nurses[index]), hospital=hospital, product=lot_product, lot="LD", quantity=1,
            location=cath_lab_store, idempotency_key=f"lot-many-{index}",
            context=ClinicalContext(encounter=f"ZYM{index}", department=cath_lab_store.department),
        )

    outcomes = run_together(6, use)

    used = [outcome for outcome in outcomes if isinstance(outcome, Consumption)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert (len(used), len(refused)) == (4, 2), outcomes
    assert {refusal.code for refusal in refused} == {"INSUFFICIENT_STOCK"}
    assert list(LotCostLayer.objects.filter(balance__lot="LD").values_list("quantity", flat=True)) == [0]
    assert Charge.objects.count() == 4
