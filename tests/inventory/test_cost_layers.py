"""A lot received twice at two prices keeps both costs: uses are billed at what was paid (零差率)."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    Charge,
    Consumption,
    Finding,
    LotBalance,
    LotCostLayer,
    LotMovementLayer,
    Movement,
)
from inventory.selectors.dashboard import stock_value_by_location
from inventory.selectors.reconciliation import period_totals
from inventory.selectors.settlements import period_bounds
from inventory.selectors.stock import StockFilters, StockScope, filter_lot_balances
from inventory.services.consumption import ClinicalContext, consume_lot, refund_consumption
from inventory.services.his import import_settlement_lines
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import LotQuantity, return_to_supplier, scrap, transfer_stock
from tests import factories
from tests.factories import TODAY

pytestmark = pytest.mark.django_db

EXPIRY = TODAY + datetime.timedelta(days=700)
FIRST, SECOND = Decimal("3.50"), Decimal("3.80")


def receive_lot(actor, supplier, location, quantity, price, number, *, gift=False, lot="L1", product):
    note = receive_delivery_note(
        actor=actor, hospital=location.hospital, supplier=supplier, number=number, receiving_location=location,
        lines=[LineInput(price, product=product, lot=lot, expiry=EXPIRY, quantity=quantity)],
        idempotency_key=f"rcv-{number}",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}",
                         gift_line_nos=frozenset({1}) if gift else frozenset())
    return Movement.objects.get(kind=Movement.Kind.RECEIPT, document_id=note.pk)


def layers_at(location, lot="L1") -> list[tuple[int | None, int, Decimal, bool]]:
    return list(
        LotCostLayer.objects.filter(balance__location=location, balance__lot=lot, quantity__gt=0)
        .order_by("receipt_id").values_list("receipt_id", "quantity", "unit_cost", "is_gift")
    )


@pytest.fixture
def operator_actor(operator):
    return Actor(user=operator)


@pytest.fixture
def two_receipts(operator_actor, supplier, warehouse, lot_agreement, lot_product):
    """Ten of lot L1 at 3.50, then — the agreement price having risen — ten more at 3.80."""
    first = receive_lot(operator_actor, supplier, warehouse, 10, FIRST, "DN-1", product=lot_product)
    lot_agreement.unit_price = SECOND
    lot_agreement.save()
    second = receive_lot(operator_actor, supplier, warehouse, 10, SECOND, "DN-2", product=lot_product)
    return first, second


@pytest.fixture
def in_store(two_receipts, operator_actor, warehouse, cath_lab_store, lot_product):
    """Twelve moved to the store: all ten of the first receipt and two of the second."""
    transfer_stock(actor=operator_actor, hospital=warehouse.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(lot_product, "L1", 12, warehouse)], idempotency_key="to-store")
    return two_receipts


def use(actor, store, product, quantity, key="use-1", encounter="ZY0001"):
    return consume_lot(
        actor=actor, hospital=store.hospital, product=product, lot="L1", quantity=quantity, location=store,
        idempotency_key=key, context=ClinicalContext(encounter=encounter, department=store.department),
    )


def test_two_receipts_at_two_prices_are_two_layers_of_one_balance(two_receipts, warehouse):
    first, second = two_receipts
    balance = LotBalance.objects.get(location=warehouse, lot="L1")
    assert balance.quantity == 20
    assert layers_at(warehouse) == [(first.pk, 10, FIRST, False), (second.pk, 10, SECOND, False)]
    assert balance.unit_cost == FIRST, "the balance shows the cost of the layer drawn next"
    assert list(LotMovementLayer.objects.filter(movement=second).values_list("receipt_id", "quantity", "unit_cost")) == [
        (second.pk, 10, SECOND)
    ]


def test_a_transfer_carries_the_oldest_layers_to_the_destination(in_store, warehouse, cath_lab_store):
    first, second = in_store
    assert layers_at(cath_lab_store) == [(first.pk, 10, FIRST, False), (second.pk, 2, SECOND, False)]
    assert layers_at(warehouse) == [(second.pk, 8, SECOND, False)]
    assert LotBalance.objects.get(location=warehouse, lot="L1").unit_cost == SECOND
    transfer = Movement.objects.get(kind=Movement.Kind.TRANSFER)
    assert sorted(transfer.layers.values_list("receipt_id", "quantity")) == [(first.pk, 10), (second.pk, 2)]


def test_a_use_within_one_layer_is_one_consumption_at_that_layers_price(in_store, keeper_actor, cath_lab_store,
                                                                        lot_product):
    consumption = use(keeper_actor, cath_lab_store, lot_product, 4)
    assert (consumption.quantity, consumption.unit_price, consumption.part_of) == (4, FIRST, None)
    assert not consumption.other_parts.exists()
    charge = consumption.charges.get()
    assert (charge.quantity, charge.unit_price, charge.amount, charge.is_zero_cost) == (4, FIRST, Decimal("14.00"), False)


def test_a_use_spanning_two_layers_bills_one_charge_line_per_purchase_price(in_store, keeper_actor, cath_lab_store,
                                                                          lot_product):
    first, second = in_store
    head = use(keeper_actor, cath_lab_store, lot_product, 11)

    parts = [head, *head.other_parts.order_by("pk")]
    assert [(p.quantity, p.unit_price, p.part_of_id) for p in parts] == [(10, FIRST, None), (1, SECOND, head.pk)]
    charges = Charge.objects.filter(consumption__in=parts).order_by("pk")
    assert [(c.quantity, c.unit_price, c.amount) for c in charges] == [
        (10, FIRST, Decimal("35.00")), (1, SECOND, Decimal("3.80"))
    ]
    assert sum(c.amount for c in charges) == 10 * FIRST + SECOND == Decimal("38.80")
    assert layers_at(cath_lab_store) == [(second.pk, 1, SECOND, False)]
    assert LotBalance.objects.get(location=cath_lab_store, lot="L1").quantity == 1
    consumed = LotMovementLayer.objects.filter(movement__kind=Movement.Kind.CONSUME).order_by("movement_id")
    assert list(consumed.values_list("receipt_id", "quantity", "unit_cost")) == [(first.pk, 10, FIRST), (second.pk, 1, SECOND)]


def test_replaying_a_split_use_returns_the_same_first_part(in_store, keeper_actor, cath_lab_store, lot_product):
    head = use(keeper_actor, cath_lab_store, lot_product, 11)
    assert use(keeper_actor, cath_lab_store, lot_product, 11).pk == head.pk
    assert Consumption.objects.count() == 2


def test_a_refund_puts_each_part_back_into_the_layer_it_came_from(in_store, keeper_actor, cath_lab_store, lot_product):
    first, second = in_store
    head = use(keeper_actor, cath_lab_store, lot_product, 11)
    part = head.other_parts.get()
    refund_consumption(actor=keeper_actor, consumption=part, reason_code="WRONG_PATIENT", to_quarantine=False,
                       idempotency_key="refund-1")

    assert layers_at(cath_lab_store) == [(first.pk, 10, FIRST, False), (second.pk, 2, SECOND, False)]
    assert LotBalance.objects.get(location=cath_lab_store, lot="L1").quantity == 12
    assert not Consumption.objects.filter(refunded_at__isnull=True).exists()
    refunds = Charge.objects.filter(kind=Charge.Kind.REFUND).order_by("pk")
    assert [(r.quantity, r.unit_price, r.amount) for r in refunds] == [
        (-10, FIRST, Decimal("-35.00")), (-1, SECOND, Decimal("-3.80"))
    ]
    with pytest.raises(Refused) as refused:
        refund_consumption(actor=keeper_actor, consumption=head, reason_code="AGAIN", to_quarantine=False,
                           idempotency_key="refund-2")
    assert refused.value.code == "ALREADY_REFUNDED"


def test_a_refund_into_quarantine_carries_the_layers_there(in_store, keeper_actor, cath_lab_store, lot_product,
                                                         hospital):
    first, second = in_store
    quarantine = factories.LocationFactory(hospital=hospital, code="QUAR", kind="QUARANTINE")
    head = use(keeper_actor, cath_lab_store, lot_product, 11)
    refund_consumption(actor=keeper_actor, consumption=head, reason_code="DEFECT", to_quarantine=True,
                       idempotency_key="refund-q")
    assert layers_at(quarantine) == [(first.pk, 10, FIRST, False), (second.pk, 1, SECOND, False)]


def test_scrap_and_return_draw_the_oldest_layer_first(in_store, operator_actor, warehouse, cath_lab_store,
                                                       lot_product, supplier, hospital):
    first, second = in_store
    scrap(actor=operator_actor, hospital=hospital, reason_code="DAMAGED", idempotency_key="scrap",
          lots=[LotQuantity(lot_product, "L1", 11, cath_lab_store)])
    assert layers_at(cath_lab_store) == [(second.pk, 1, SECOND, False)]
    return_to_supplier(actor=operator_actor, hospital=hospital, supplier=supplier, reason_code="RECALL",
                       idempotency_key="return", lots=[LotQuantity(lot_product, "L1", 3, warehouse)])
    assert layers_at(warehouse) == [(second.pk, 5, SECOND, False)]
    scrapped = Movement.objects.get(kind=Movement.Kind.SCRAP)
    assert sorted(scrapped.layers.values_list("receipt_id", "quantity")) == [(first.pk, 10), (second.pk, 1)]


def test_a_gifted_lot_enters_at_zero_cost_and_its_use_is_flagged(operator_actor, keeper_actor, supplier, warehouse,
                                                                 cath_lab_store, lot_agreement, lot_product):
    paid = receive_lot(operator_actor, supplier, cath_lab_store, 2, FIRST, "DN-P", product=lot_product)
    gift = receive_lot(operator_actor, supplier, cath_lab_store, 3, FIRST, "DN-G", gift=True, product=lot_product)
    assert layers_at(cath_lab_store) == [(paid.pk, 2, FIRST, False), (gift.pk, 3, Decimal("0"), True)]

    head = use(keeper_actor, cath_lab_store, lot_product, 4)
    part = head.other_parts.get()
    assert [(c.quantity, c.unit_price, c.amount, c.is_zero_cost) for c in (*head.charges.all(), *part.charges.all())] == [
        (2, FIRST, Decimal("7.00"), False), (2, Decimal("0.00"), Decimal("0.00"), True),
    ]


def test_a_lot_on_hand_before_cost_layers_is_drawn_from_its_opening_layer(keeper_actor, hospital, cath_lab_store,
                                                                          lot_product):
    """Stock written before layers existed (the migration opens one layer at its recorded cost)."""
    balance = LotBalance.objects.create(hospital=hospital, product=lot_product, lot="L1", location=cath_lab_store,
                                        unit_cost=Decimal("2.90"), quantity=5)
    LotCostLayer.objects.create(balance=balance, receipt=None, unit_cost=Decimal("2.90"), quantity=5)
    consumption = use(keeper_actor, cath_lab_store, lot_product, 5)
    assert (consumption.unit_price, consumption.amount) == (Decimal("2.90"), Decimal("14.50"))
    assert LotMovementLayer.objects.get(movement__kind=Movement.Kind.CONSUME).receipt_id is None


def test_received_amount_of_the_period_counts_each_receipt_at_its_own_price(two_receipts, hospital):
    start, end = period_bounds(TODAY, TODAY)
    totals = period_totals(hospital, start, end)
    assert (totals.received_quantity, totals.received_amount) == (20, 10 * FIRST + 10 * SECOND)


def test_reconciliation_compares_each_billed_line_with_the_price_of_its_part(in_store, keeper_actor, cath_lab_store,
                                                                           lot_product, hospital):
    head = use(keeper_actor, cath_lab_store, lot_product, 11, encounter="ZY0002")
    part = head.other_parts.get()
    now = timezone.now()

    def line(consumption, price, line_id):
        charge = consumption.charges.get()
        return {
            "his_line_id": line_id, "encounter": "ZY0002", "his_charge_code": lot_product.his_charge_code,
            "nhsa_code": lot_product.nhsa_code, "quantity": charge.quantity, "unit_price": str(price),
            "amount": str(price * charge.quantity), "settled_at": now.isoformat(), "spd_charge_id": charge.pk,
        }

    # Both lines billed at the newer price: the part bought at 3.80 is right, the one at 3.50 is not.
    import_settlement_lines(hospital=hospital, rows=[line(head, SECOND, "H1"), line(part, SECOND, "H2")], batch="B1")
    run = run_reconciliation(hospital=hospital, period_start=timezone.localdate(), period_end=timezone.localdate())
    findings = list(run.findings.values_list("kind", "amount"))
    assert findings == [(Finding.Kind.PRICE_ABOVE_PURCHASE, Decimal("3.00"))], findings


def test_stock_lists_and_the_dashboard_value_a_lot_layer_by_layer(in_store, operator, warehouse, cath_lab_store):
    scope = StockScope.of(operator)
    values = {balance.location_id: balance.value for balance in filter_lot_balances(scope, StockFilters())}
    assert values == {cath_lab_store.pk: 10 * FIRST + 2 * SECOND, warehouse.pk: 8 * SECOND}
    by_location = {row.location_id: ([quantity.amount for quantity in row.lot_quantities], row.owned_value)
                   for row in stock_value_by_location(scope).locations}
    assert by_location[cath_lab_store.pk] == ([12], 10 * FIRST + 2 * SECOND)
    assert by_location[warehouse.pk] == ([8], 8 * SECOND)


def test_a_use_recorded_before_cost_layers_is_refunded_into_the_opening_layer(keeper_actor, hospital, cath_lab_store,
                                                                              lot_product):
    """A consumption whose CONSUME movement predates layers (no layer rows) still refunds whole."""
    balance = LotBalance.objects.create(hospital=hospital, product=lot_product, lot="L1", location=cath_lab_store,
                                        unit_cost=Decimal("2.90"), quantity=1)
    LotCostLayer.objects.create(balance=balance, receipt=None, unit_cost=Decimal("2.90"), quantity=1)
    old = Consumption.objects.create(
        hospital=hospital, product=lot_product, lot="L1", quantity=3, location=cath_lab_store, encounter="ZY0003",
        department=cath_lab_store.department, unit_price=Decimal("2.90"), occurred_at=timezone.now(),
    )
    Movement.objects.create(
        hospital=hospital, kind=Movement.Kind.CONSUME, product=lot_product, lot="L1", quantity=3,
        from_location=cath_lab_store, occurred_at=timezone.now(), document_type=Movement.DocumentType.CONSUMPTION,
        document_id=old.pk, idempotency_key="legacy-use", actor_user=keeper_actor.user,
    )
    Charge.objects.create(hospital=hospital, consumption=old, kind=Charge.Kind.CHARGE, encounter="ZY0003",
                          his_charge_code=lot_product.his_charge_code, quantity=3, unit_price=Decimal("2.90"),
                          amount=Decimal("8.70"))

    refund_consumption(actor=keeper_actor, consumption=old, reason_code="WRONG_PATIENT", to_quarantine=False,
                       idempotency_key="refund-legacy")

    assert layers_at(cath_lab_store) == [(None, 4, Decimal("2.90"), False)]
    assert LotBalance.objects.get(pk=balance.pk).quantity == 4
