"""Purchase orders: the ordering rules, deliveries against an order (short, over, late) and the
reports computed from the orders and the ledger (网采率, delivery performance)."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import AcceptanceRecord, PurchaseOrder, PurchasePlan, Unit
from inventory.selectors.purchasing import delivery_performance, emergency_lines, platform_rate
from inventory.services.purchasing import (
    DemandLine,
    OrderLineInput,
    close_purchase_order,
    create_purchase_order,
    order_plan,
    plan_from_demand,
)
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests import factories
from tests.conftest import scan_every_line
from tests.factories import TODAY, gs1_udi

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
PRICE = Decimal("1200.00")


def order(actor, supplier, product, quantity, *, reference="YG-2026-0001", promised=TODAY, **kwargs):
    return create_purchase_order(
        actor=actor, hospital=product.hospital, supplier=supplier, promised_date=promised,
        lines=[OrderLineInput(product=product, quantity=quantity, platform_reference=reference, **kwargs)],
    )


def deliver(actor, supplier, warehouse, product, serials, *, purchase_order, number):
    note = receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number, receiving_location=warehouse,
        lines=[LineInput(PRICE, udi=gs1_udi(product.udi_di, serial=serial)) for serial in serials],
        idempotency_key=f"rcv-{number}", purchase_order=purchase_order,
    )
    scan_every_line(actor, note)
    return accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


def codes(refused: pytest.ExceptionInfo) -> list[str]:
    return [problem.code for problem in refused.value.problems]


def test_order_names_its_agreement_price_and_platform_reference(keeper_actor, supplier, product, agreement):
    placed = order(keeper_actor, supplier, product, 3)

    line = placed.lines.get()
    assert (placed.status, placed.supplier, line.agreement, line.unit_price) == ("OPEN", supplier, agreement, PRICE)
    assert line.platform_reference == "YG-2026-0001" and line.through_platform
    assert placed.number.startswith("PO")


def test_high_value_line_without_platform_reference_is_refused(keeper_actor, supplier, product):
    with pytest.raises(Refused) as refused:
        order(keeper_actor, supplier, product, 1, reference="")

    assert codes(refused) == ["PLATFORM_REFERENCE_REQUIRED"]
    assert not PurchaseOrder.objects.exists()


def test_vbp_product_needs_the_platform_even_when_low_value(keeper_actor, supplier, lot_product, lot_agreement):
    lot_agreement.vbp_contract = "VBP-2026-冠脉"
    lot_agreement.save()
    with pytest.raises(Refused) as refused:
        order(keeper_actor, supplier, lot_product, 10, reference="")
    assert codes(refused) == ["PLATFORM_REFERENCE_REQUIRED"]

    lot_agreement.vbp_contract = ""
    lot_agreement.save()
    assert order(keeper_actor, supplier, lot_product, 10, reference="").lines.get().platform_reference == ""


def test_emergency_off_platform_order_needs_an_spd_operator_and_is_flagged(keeper_actor, operator, supplier, product):
    with pytest.raises(Refused) as refused:
        order(keeper_actor, supplier, product, 1, reference="", emergency_reason="急诊手术，平台断网")
    assert codes(refused) == ["EMERGENCY_NOT_AUTHORISED"]

    placed = order(Actor(user=operator), supplier, product, 1, reference="", emergency_reason="急诊手术，平台断网")
    line = placed.lines.get()
    assert (line.emergency_reason, line.emergency_by) == ("急诊手术，平台断网", operator)
    assert list(emergency_lines(hospital=product.hospital, start=TODAY, end=TODAY)) == [line]


def test_product_without_nhsa_code_is_orderable_only_when_exempted(keeper_actor, supplier, product):
    product.nhsa_code = ""
    product.save()
    with pytest.raises(Refused) as refused:
        order(keeper_actor, supplier, product, 1)
    assert codes(refused) == ["NHSA_CODE_MISSING"]

    placed = order(keeper_actor, supplier, product, 1, nhsa_exemption_reason="新品，医保编码申报中")
    assert placed.lines.get().nhsa_exemption_reason == "新品，医保编码申报中"


def test_every_problem_of_every_line_is_listed(keeper_actor, supplier, product, hospital):
    no_agreement = factories.ProductFactory(hospital=hospital, nhsa_code="")
    with pytest.raises(Refused) as refused:
        create_purchase_order(
            actor=keeper_actor, hospital=hospital, supplier=supplier, promised_date=TODAY,
            lines=[OrderLineInput(product=product, quantity=1), OrderLineInput(product=no_agreement, quantity=2)],
        )
    assert codes(refused) == [
        "PLATFORM_REFERENCE_REQUIRED", "ORDER_AGREEMENT_INVALID", "PLATFORM_REFERENCE_REQUIRED", "NHSA_CODE_MISSING",
    ]
    assert [problem.item for problem in refused.value.problems] == [1, 2, 2, 2]


def test_plan_from_demand_splits_into_one_order_per_supplier(keeper_actor, hospital, supplier, product, lot_product):
    other_supplier = factories.SupplierFactory()
    other = factories.SupplyAgreementFactory(product__hospital=hospital, supplier=other_supplier)
    plan = plan_from_demand(
        actor=keeper_actor, hospital=hospital, source="replenishment",
        lines=[DemandLine(product, 2), DemandLine(lot_product, 50), DemandLine(other.product, 1)],
    )
    assert [line.agreement.supplier for line in plan.lines.order_by("line_no")] == [supplier, supplier, other_supplier]
    with pytest.raises(Refused) as refused:
        order_plan(actor=keeper_actor, plan=plan, promised_date=TODAY)
    assert codes(refused) == ["PLATFORM_REFERENCE_REQUIRED", "PLATFORM_REFERENCE_REQUIRED"]
    plan.lines.filter(product__is_high_value=True).update(platform_reference="YG-1")

    orders = order_plan(actor=keeper_actor, plan=plan, promised_date=TODAY)

    assert sorted((o.supplier_id, o.lines.count()) for o in orders) == sorted([(supplier.pk, 2), (other_supplier.pk, 1)])
    plan.refresh_from_db()
    assert plan.status == PurchasePlan.Status.ORDERED
    with pytest.raises(Refused) as again:
        order_plan(actor=keeper_actor, plan=plan, promised_date=TODAY)
    assert codes(again) == ["PLAN_ALREADY_ORDERED"]


def test_short_delivery_leaves_the_line_open_and_over_delivery_is_rejected(
    keeper_actor, supplier, warehouse, product
):
    placed = order(keeper_actor, supplier, product, 3)

    deliver(keeper_actor, supplier, warehouse, product, ["S1", "S2"], purchase_order=placed, number="DN-1")
    placed.refresh_from_db()
    assert placed.status == PurchaseOrder.Status.PARTLY_DELIVERED
    assert placed.lines.get().delivered_quantity == 2

    note = deliver(keeper_actor, supplier, warehouse, product, ["S3", "S4"], purchase_order=placed, number="DN-2")
    placed.refresh_from_db()
    assert placed.status == PurchaseOrder.Status.DELIVERED
    assert placed.lines.get().delivered_quantity == 3
    rejected = AcceptanceRecord.objects.get(line__note=note, line__line_no=2)
    assert (rejected.decision, rejected.reason_code) == ("REJECTED", "OVER_DELIVERY")
    assert not Unit.objects.filter(serial="S4").exists()

    with pytest.raises(Refused) as refused:
        deliver(keeper_actor, supplier, warehouse, product, ["S5"], purchase_order=placed, number="DN-3")
    assert codes(refused) == ["ORDER_NOT_OPEN"]


def test_delivery_of_a_product_not_on_the_order_is_rejected(keeper_actor, supplier, warehouse, product, hospital):
    other = factories.SupplyAgreementFactory(product__hospital=hospital, supplier=supplier).product
    placed = order(keeper_actor, supplier, product, 1)

    note = deliver(keeper_actor, supplier, warehouse, other, ["X1"], purchase_order=placed, number="DN-X")

    assert note.lines.get().acceptance.reason_code == "PRODUCT_NOT_ON_ORDER"
    placed.refresh_from_db()
    assert placed.status == PurchaseOrder.Status.OPEN


def test_note_against_another_suppliers_or_hospitals_order_is_refused(
    keeper_actor, supplier, warehouse, product, other_hospital
):
    placed = order(keeper_actor, supplier, product, 1)
    with pytest.raises(Refused) as refused:
        deliver(keeper_actor, factories.SupplierFactory(), warehouse, product, ["S1"], purchase_order=placed,
                number="DN-1")
    assert codes(refused) == ["ORDER_SUPPLIER_MISMATCH"]

    foreign = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier)
    foreign_order = order(Actor(user=factories.UserFactory(hospital=other_hospital)), supplier, foreign.product, 1)
    with pytest.raises(Refused) as refused:
        deliver(keeper_actor, supplier, warehouse, product, ["S1"], purchase_order=foreign_order, number="DN-2")
    assert codes(refused) == ["NOT_FOUND"]


def test_closing_an_order_needs_a_reason_and_stops_deliveries(keeper_actor, supplier, warehouse, product):
    placed = order(keeper_actor, supplier, product, 3)
    deliver(keeper_actor, supplier, warehouse, product, ["S1"], purchase_order=placed, number="DN-1")
    with pytest.raises(Refused) as refused:
        close_purchase_order(actor=keeper_actor, order=placed, reason="  ")
    assert codes(refused) == ["CLOSE_REASON_MISSING"]

    closed = close_purchase_order(actor=keeper_actor, order=placed, reason="供应商断货，余量改从他处采购")

    assert (closed.status, closed.closed_by) == ("CLOSED", keeper_actor.user)
    with pytest.raises(Refused) as refused:
        close_purchase_order(actor=keeper_actor, order=placed, reason="again")
    assert codes(refused) == ["ORDER_NOT_OPEN"]


def test_delivery_performance_from_the_ledger_with_a_short_and_a_late_delivery(
    keeper_actor, operator, supplier, warehouse, product, hospital
):
    on_time = order(keeper_actor, supplier, product, 2, promised=TODAY + datetime.timedelta(days=3))
    deliver(keeper_actor, supplier, warehouse, product, ["A1", "A2"], purchase_order=on_time, number="DN-A")
    late = order(keeper_actor, supplier, product, 1, promised=TODAY)
    # Ordered five days ago, promised for yesterday: what arrives today is late.
    PurchaseOrder.objects.filter(pk=late.pk).update(
        ordered_at=timezone.now() - datetime.timedelta(days=5), promised_date=TODAY - datetime.timedelta(days=1)
    )
    deliver(keeper_actor, supplier, warehouse, product, ["B1"], purchase_order=late, number="DN-B")
    short = order(keeper_actor, supplier, product, 4, promised=TODAY + datetime.timedelta(days=1))
    deliver(keeper_actor, supplier, warehouse, product, ["C1"], purchase_order=short, number="DN-C")
    close_purchase_order(actor=keeper_actor, order=short, reason="余量取消")

    [performance] = delivery_performance(
        hospital=hospital, start=TODAY - datetime.timedelta(days=30), end=TODAY + datetime.timedelta(days=30)
    )

    assert performance.supplier == supplier
    assert (performance.lines, performance.on_time_lines) == (3, 1)  # the late one and the short one are not
    assert (performance.ordered_quantity, performance.received_quantity) == (7, 4)
    assert performance.fill_rate == Decimal("57.1")
    assert performance.on_time_rate == Decimal("33.3")
    # (0 + 5 + 0) days / 3 lines
    assert Decimal("1.6") <= performance.lead_time_days <= Decimal("1.7")


def test_platform_rate_is_the_share_of_value_ordered_through_the_platform(
    keeper_actor, operator, supplier, product, lot_product
):
    order(keeper_actor, supplier, product, 2)  # 2 × 1200 on the platform
    order(Actor(user=operator), supplier, product, 1, reference="", emergency_reason="急诊")  # 1200 off it
    order(keeper_actor, supplier, lot_product, 100, reference="")  # 350 off it, no reference needed

    [month] = platform_rate(hospital=product.hospital, start=TODAY, end=TODAY)

    assert (month.total_value, month.platform_value) == (Decimal("3950.00"), Decimal("2400.00"))
    assert month.rate == Decimal("60.76")
    assert (month.emergency_lines, month.emergency_value) == (1, Decimal("1200.00"))
