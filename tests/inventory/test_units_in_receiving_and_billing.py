"""Packaging units at the edges: a delivery received in the purchase unit lands in base units, a
use is charged in the billing unit at the converted price."""
import datetime
from decimal import Decimal

import pytest

from inventory.errors import Refused
from inventory.models import Charge, DeliveryLine, LotBalance, LotMovementLayer, Movement, PackagingUnit
from inventory.services.consumption import ClinicalContext, consume_lot, refund_consumption
from inventory.services.his import charge_message
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note, received_as
from inventory.services.stock import LotQuantity, transfer_stock
from tests.factories import TODAY

pytestmark = pytest.mark.django_db

EXPIRY = TODAY + datetime.timedelta(days=700)


@pytest.fixture
def boxed(lot_product):
    """输液器 counted in 支 (3.50 each by the agreement), bought per 盒 of 10, billed per 支."""
    lot_product.unit_of_measure = "支"
    lot_product.save()
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    PackagingUnit.objects.create(product=lot_product, name="箱", factor=100)
    return lot_product


def receive(actor, supplier, warehouse, product, *lines, number="DN-U1"):
    note = receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number, receiving_location=warehouse,
        lines=list(lines), idempotency_key=f"rcv-{number}",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")
    return note


def test_a_delivery_in_the_purchase_unit_lands_as_base_units_in_the_ledger(keeper_actor, supplier, warehouse, boxed):
    note = receive(keeper_actor, supplier, warehouse, boxed,
                   LineInput(Decimal("35.00"), product=boxed, lot="B1", expiry=EXPIRY, quantity=3, unit="盒"))
    line = DeliveryLine.objects.get(note=note)
    assert (line.quantity, line.unit_price, line.received_unit, line.received_unit_factor) == (30, Decimal("3.50"), "盒", 10)
    assert received_as(line) == "3 盒"
    assert line.acceptance.decision == "ACCEPTED"  # 3.50 per 支 is the agreement price
    receipt = Movement.objects.get(kind=Movement.Kind.RECEIPT, document_id=note.pk)
    assert receipt.quantity == 30
    assert LotBalance.objects.get(location=warehouse, lot="B1").quantity == 30
    layer = LotMovementLayer.objects.get(movement=receipt)
    assert (layer.quantity, layer.unit_cost) == (30, Decimal("3.50"))


def test_a_delivery_in_the_base_unit_is_recorded_as_before(keeper_actor, supplier, warehouse, boxed):
    note = receive(keeper_actor, supplier, warehouse, boxed,
                   LineInput(Decimal("3.50"), product=boxed, lot="B1", expiry=EXPIRY, quantity=7))
    line = DeliveryLine.objects.get(note=note)
    assert (line.quantity, line.unit_price, line.received_unit, line.received_unit_factor) == (7, Decimal("3.50"), "", 1)
    assert received_as(line) == "7 支"


def test_a_price_per_box_that_is_not_whole_cents_per_piece_is_refused_and_nothing_recorded(
    keeper_actor, supplier, warehouse, boxed
):
    with pytest.raises(Refused) as refused:
        receive(keeper_actor, supplier, warehouse, boxed,
                LineInput(Decimal("3.50"), product=boxed, lot="B0", expiry=EXPIRY, quantity=1),
                LineInput(Decimal("35.05"), product=boxed, lot="B1", expiry=EXPIRY, quantity=3, unit="盒"))
    assert [(p.code, p.item) for p in refused.value.problems] == [
        ("PRICE_NOT_WHOLE_CENTS_PER_BASE_UNIT", "lines[1].unit_price")
    ]
    assert not DeliveryLine.objects.exists()


def test_an_unknown_unit_is_refused_naming_the_line(keeper_actor, supplier, warehouse, boxed):
    with pytest.raises(Refused) as refused:
        receive(keeper_actor, supplier, warehouse, boxed,
                LineInput(Decimal("35.00"), product=boxed, lot="B1", expiry=EXPIRY, quantity=3, unit="瓶"))
    assert [(p.code, p.item) for p in refused.value.problems] == [("UNKNOWN_PACKAGING_UNIT", "lines[0].unit")]


def test_a_unit_tracked_line_takes_no_packaging_unit(keeper_actor, supplier, warehouse, product):
    with pytest.raises(Refused) as refused:
        receive(keeper_actor, supplier, warehouse, product,
                LineInput(Decimal("1200.00"), product=product, lot="X", expiry=EXPIRY, quantity=1, unit="盒"))
    assert refused.value.code == "DELIVERY_LINE_INVALID"


@pytest.fixture
def billed_per_box(keeper_actor, supplier, warehouse, cath_lab_store, boxed):
    """Forty 支 in the department store; the product is billed per 盒 (约定计价单位)."""
    PackagingUnit.objects.filter(product=boxed, name="盒").update(is_billing_unit=True)
    receive(keeper_actor, supplier, warehouse, boxed,
            LineInput(Decimal("35.00"), product=boxed, lot="B1", expiry=EXPIRY, quantity=4, unit="盒"))
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(boxed, "B1", 40, warehouse)], idempotency_key="to-store")
    return boxed


def use(actor, store, product, quantity, key):
    return consume_lot(
        actor=actor, hospital=store.hospital, product=product, lot="B1", quantity=quantity, location=store,
        idempotency_key=key, context=ClinicalContext(encounter="ZY0001", department=store.department),
    )


def test_a_use_is_charged_in_the_billing_unit_at_the_converted_price(keeper_actor, cath_lab_store, billed_per_box):
    consumption = use(keeper_actor, cath_lab_store, billed_per_box, 20, "use-20")
    assert (consumption.quantity, consumption.unit_price) == (20, Decimal("3.50"))  # the ledger stays in 支
    charge = consumption.charges.get()
    assert (charge.quantity, charge.unit_price, charge.amount, charge.billing_unit) == (
        2, Decimal("35.00"), Decimal("70.00"), "盒"
    )
    message = charge_message(charge)
    assert (message["quantity"], message["unit_price"], message["amount"], message["unit"]) == (2, "35.00", "70.00", "盒")
    refund_consumption(actor=keeper_actor, consumption=consumption, reason_code="WRONG_PATIENT", to_quarantine=False,
                       idempotency_key="refund-20")
    refund = Charge.objects.get(kind=Charge.Kind.REFUND)
    assert (refund.quantity, refund.unit_price, refund.amount, refund.billing_unit) == (
        -2, Decimal("35.00"), Decimal("-70.00"), "盒"
    )


def test_a_use_that_is_not_whole_billing_units_is_refused_and_changes_nothing(keeper_actor, cath_lab_store,
                                                                              billed_per_box):
    before = Movement.objects.count()
    with pytest.raises(Refused) as refused:
        use(keeper_actor, cath_lab_store, billed_per_box, 15, "use-15")
    assert refused.value.code == "NOT_WHOLE_BILLING_UNITS"
    assert Movement.objects.count() == before
    assert LotBalance.objects.get(location=cath_lab_store).quantity == 40


def test_a_product_billed_in_its_base_unit_sends_no_unit(keeper_actor, supplier, warehouse, cath_lab_store, boxed):
    receive(keeper_actor, supplier, warehouse, boxed,
            LineInput(Decimal("35.00"), product=boxed, lot="B1", expiry=EXPIRY, quantity=1, unit="盒"))
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(boxed, "B1", 10, warehouse)], idempotency_key="to-store")
    charge = use(keeper_actor, cath_lab_store, boxed, 3, "use-3").charges.get()
    assert (charge.quantity, charge.unit_price, charge.billing_unit) == (3, Decimal("3.50"), "")
    assert "unit" not in charge_message(charge)
