"""Department expensing (科室领用即消耗): non-chargeable items are expensed to the department on
arrival or at a count, at cost, never billed; the reconciliation counts them as issued."""
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
    LotMovementLayer,
    Movement,
    StockOrder,
)
from inventory.selectors.flow_table import flow_table_rows
from inventory.services.consumption import ClinicalContext, consume_lot
from inventory.services.expensing import CountedLot, expense_department_stock
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.factories import TODAY

pytestmark = pytest.mark.django_db

EXPIRY = TODAY + datetime.timedelta(days=700)


@pytest.fixture
def gauze(hospital, supplier):
    """医用纱布, no charge code: expensed to the department. 1.20 a 包 by the agreement."""
    agreement = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False, product__name="医用纱布",
        product__his_charge_code="", product__nhsa_code="", product__unit_of_measure="包",
        product__expensed_on_issue=True, unit_price=Decimal("1.20"), supplier=supplier,
    )
    return agreement.product


def receive(actor, supplier, warehouse, product, quantity, price, number, lot="G1"):
    note = receive_delivery_note(
        actor=actor, hospital=warehouse.hospital, supplier=supplier, number=number, receiving_location=warehouse,
        lines=[LineInput(price, product=product, lot=lot, expiry=EXPIRY, quantity=quantity)],
        idempotency_key=f"rcv-{number}",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key=f"acc-{number}")


@pytest.fixture
def gauze_in_warehouse(keeper_actor, supplier, warehouse, gauze, hospital):
    """Fifty 包 at 1.20, then — a new agreement price — fifty more at 1.30."""
    receive(keeper_actor, supplier, warehouse, gauze, 50, Decimal("1.20"), "DN-G1")
    gauze.agreements.update(unit_price=Decimal("1.30"))
    receive(keeper_actor, supplier, warehouse, gauze, 50, Decimal("1.30"), "DN-G2")
    return gauze


def send(actor, warehouse, to, product, quantity, key):
    return transfer_stock(actor=actor, hospital=warehouse.hospital, to_location=to, idempotency_key=key,
                          lots=[LotQuantity(product, "G1", quantity, warehouse)])


def expense_movements():
    return Movement.objects.filter(kind=Movement.Kind.DEPARTMENT_EXPENSE)


def expensed_value(movement) -> Decimal:
    return sum((row.quantity * row.unit_cost for row in LotMovementLayer.objects.filter(movement=movement)), Decimal(0))


def test_arriving_in_a_department_store_expenses_it_at_the_cost_it_brought(
    keeper_actor, warehouse, cath_lab_store, gauze_in_warehouse
):
    order = send(keeper_actor, warehouse, cath_lab_store, gauze_in_warehouse, 60, "to-ward")
    expense = expense_movements().get()
    assert (expense.quantity, expense.from_location, expense.to_location) == (60, cath_lab_store, None)
    assert (expense.document_type, expense.document_id) == (Movement.DocumentType.STOCK_ORDER, order.pk)
    # fifty of the first receipt at 1.20 and ten of the second at 1.30
    assert expensed_value(expense) == Decimal("60.00") + Decimal("13.00")
    assert LotBalance.objects.get(location=cath_lab_store).quantity == 0
    assert LotBalance.objects.get(location=warehouse).quantity == 40
    assert not Consumption.objects.exists() and not Charge.objects.exists()


def test_a_transfer_between_warehouse_locations_expenses_nothing(keeper_actor, hospital, warehouse, gauze_in_warehouse):
    annex = factories.LocationFactory(hospital=hospital, code="CW2", name="中心库二区")
    send(keeper_actor, warehouse, annex, gauze_in_warehouse, 10, "to-annex")
    assert not expense_movements().exists()
    assert LotBalance.objects.get(location=annex).quantity == 10


def test_a_chargeable_item_arriving_in_a_ward_stays_in_stock(keeper_actor, supplier, warehouse, cath_lab_store,
                                                             lot_product):
    receive(keeper_actor, supplier, warehouse, lot_product, 10, Decimal("3.50"), "DN-L1", lot="G1")
    send(keeper_actor, warehouse, cath_lab_store, lot_product, 10, "to-ward")
    assert not expense_movements().exists()
    assert LotBalance.objects.get(location=cath_lab_store).quantity == 10


@pytest.fixture
def counting_ward(keeper_actor, warehouse, cath_lab_store, gauze_in_warehouse):
    """The cath lab expenses at its count: seventy 包 sit in its store."""
    department = cath_lab_store.department
    department.expense_at_count = True
    department.save()
    send(keeper_actor, warehouse, cath_lab_store, gauze_in_warehouse, 70, "to-ward")
    assert not expense_movements().exists()
    return cath_lab_store


def test_a_count_expenses_what_is_no_longer_there_oldest_cost_first(keeper_actor, counting_ward, gauze_in_warehouse):
    order = expense_department_stock(actor=keeper_actor, location=counting_ward, idempotency_key="count-1",
                                     counted=[CountedLot(gauze_in_warehouse, "G1", 15)])
    assert order.kind == StockOrder.Kind.DEPARTMENT_EXPENSE
    expense = expense_movements().get()
    assert (expense.quantity, expense.document_id) == (55, order.pk)
    assert expensed_value(expense) == Decimal("50") * Decimal("1.20") + 5 * Decimal("1.30")
    assert LotBalance.objects.get(location=counting_ward).quantity == 15
    assert not Charge.objects.exists()
    again = expense_department_stock(actor=keeper_actor, location=counting_ward, idempotency_key="count-1",
                                     counted=[CountedLot(gauze_in_warehouse, "G1", 15)])
    assert again == order and expense_movements().count() == 1


def test_a_count_without_figures_expenses_everything_on_hand(keeper_actor, counting_ward):
    expense_department_stock(actor=keeper_actor, location=counting_ward, idempotency_key="count-all")
    assert expense_movements().get().quantity == 70
    assert LotBalance.objects.get(location=counting_ward).quantity == 0


def test_a_count_above_the_books_is_refused_and_changes_nothing(keeper_actor, counting_ward, gauze_in_warehouse):
    with pytest.raises(Refused) as refused:
        expense_department_stock(actor=keeper_actor, location=counting_ward, idempotency_key="count-x",
                                 counted=[CountedLot(gauze_in_warehouse, "G1", 71)])
    assert refused.value.code == "COUNT_ABOVE_BOOK"
    assert not expense_movements().exists() and not StockOrder.objects.filter(kind="DEPARTMENT_EXPENSE").exists()


def test_a_count_of_a_chargeable_item_or_outside_a_department_is_refused(keeper_actor, warehouse, counting_ward,
                                                                         lot_product):
    with pytest.raises(Refused) as refused:
        expense_department_stock(actor=keeper_actor, location=counting_ward, idempotency_key="count-y",
                                 counted=[CountedLot(lot_product, "G1", 0)])
    assert refused.value.code == "NOT_EXPENSED_ON_ISSUE"
    with pytest.raises(Refused) as refused:
        expense_department_stock(actor=keeper_actor, location=warehouse, idempotency_key="count-z")
    assert refused.value.code == "NOT_A_DEPARTMENT_STORE"


def test_a_nurse_counts_only_her_own_department(hospital, counting_ward):
    stranger = factories.UserFactory(username="nurse-x", hospital=hospital, roles=["nurse"])
    with pytest.raises(Refused) as refused:
        expense_department_stock(actor=Actor(user=stranger), location=counting_ward, idempotency_key="count-n")
    assert refused.value.code == "NOT_YOUR_DEPARTMENT"
    stranger.departments.add(counting_ward.department)
    expense_department_stock(actor=Actor(user=stranger), location=counting_ward, idempotency_key="count-n")
    assert expense_movements().get().actor_user == stranger


def test_an_expensed_item_is_never_used_on_a_patient_bill(keeper_actor, counting_ward, gauze_in_warehouse):
    with pytest.raises(Refused) as refused:
        consume_lot(actor=keeper_actor, hospital=counting_ward.hospital, product=gauze_in_warehouse, lot="G1",
                    quantity=1, location=counting_ward, idempotency_key="use-g",
                    context=ClinicalContext(encounter="ZY1", department=counting_ward.department))
    assert refused.value.code == "EXPENSED_NOT_BILLED"


def test_reconciliation_counts_expensed_items_as_issued_not_as_used_without_a_bill(
    keeper_actor, hospital, warehouse, cath_lab_store, gauze_in_warehouse
):
    send(keeper_actor, warehouse, cath_lab_store, gauze_in_warehouse, 60, "to-ward")
    today = timezone.localdate()
    run = run_reconciliation(hospital=hospital, period_start=today, period_end=today)
    assert not run.findings.exists(), list(run.findings.values_list("kind", "message"))
    table = {(row["product_code"], row["location_code"]): row for row in flow_table_rows(run)}
    ward = table[(gauze_in_warehouse.internal_code, cath_lab_store.code)]
    assert (ward["transferred_in"], ward["expensed"], ward["consumed"], ward["closing"]) == (60, 60, 0, 0)
    store = table[(gauze_in_warehouse.internal_code, warehouse.code)]
    assert (store["received"], store["transferred_out"], store["expensed"], store["closing"]) == (100, 60, 0, 40)
    assert run.summary["totals"]["expensed"] == {"quantity": 60, "amount": "73.00"}
    assert run.summary["totals"]["consumed"]["quantity"] == 0
    assert not run.findings.filter(kind=Finding.Kind.USED_NOT_BILLED).exists()


def test_the_department_cost_report_sums_by_department_and_product_at_cost(
    keeper_actor, hospital, supplier, warehouse, cath_lab_store, gauze_in_warehouse
):
    from inventory.selectors.expensing import department_cost
    from inventory.selectors.stock import StockScope

    icu = factories.DepartmentFactory(hospital=hospital, code="ICU", name="重症医学科")
    icu_store = factories.LocationFactory(hospital=hospital, department=icu, code="ICU-STORE", name="ICU 二级库",
                                          kind="DEPARTMENT_STORE")
    gloves = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False, product__name="检查手套",
        product__his_charge_code="", product__unit_of_measure="副", product__expensed_on_issue=True,
        unit_price=Decimal("0.35"), supplier=supplier,
    ).product
    receive(keeper_actor, supplier, warehouse, gloves, 200, Decimal("0.35"), "DN-GL")
    send(keeper_actor, warehouse, cath_lab_store, gauze_in_warehouse, 30, "g-cath")   # 30 × 1.20 = 36.00
    send(keeper_actor, warehouse, icu_store, gauze_in_warehouse, 30, "g-icu")         # 20 × 1.20 + 10 × 1.30 = 37.00
    send(keeper_actor, warehouse, icu_store, gloves, 100, "gl-icu")                   # 100 × 0.35 = 35.00
    # ICU expenses at its count; ten more 包 arrive, and the count of the 1st of last month finds 4 left
    icu.expense_at_count = True
    icu.save()
    send(keeper_actor, warehouse, icu_store, gauze_in_warehouse, 10, "g-icu-2")
    last_month = timezone.localdate().replace(day=1) - datetime.timedelta(days=1)
    expense_department_stock(actor=keeper_actor, location=icu_store, idempotency_key="icu-count",
                             counted=[CountedLot(gauze_in_warehouse, "G1", 4)],
                             occurred_at=timezone.make_aware(datetime.datetime.combine(last_month, datetime.time(9))))
    today = timezone.localdate()
    scope = StockScope.of(keeper_actor.user)
    report = department_cost(scope, start=today.replace(day=1), end=today)
    figures = [(row.department_code, row.product.name, row.quantity, row.value) for row in report.rows]
    assert figures == sorted([
        ("CATH", "医用纱布", 30, Decimal("36.00")),
        ("ICU", "医用纱布", 30, Decimal("37.00")),
        ("ICU", "检查手套", 100, Decimal("35.00")),
    ], key=lambda row: (row[0], gauze_in_warehouse.internal_code if row[1] == "医用纱布" else gloves.internal_code))
    assert report.total == Decimal("108.00")
    assert [(code, total) for code, _, _, total in report.by_department()] == [
        ("CATH", Decimal("36.00")), ("ICU", Decimal("72.00"))]
    # the count of last month: six 包 of the second receipt, at 1.30
    earlier = department_cost(scope, start=last_month, end=last_month)
    assert [(row.department_code, row.quantity, row.value) for row in earlier.rows] == [("ICU", 6, Decimal("7.80"))]
    # a nurse of the cath lab sees her department only
    nurse = factories.UserFactory(username="nurse-cath", hospital=hospital, roles=["nurse"])
    nurse.departments.add(cath_lab_store.department)
    mine = department_cost(StockScope.of(nurse), start=today.replace(day=1), end=today)
    assert [row.department_code for row in mine.rows] == ["CATH"] and mine.total == Decimal("36.00")
    only_icu = department_cost(scope, start=today.replace(day=1), end=today, department_id=icu.pk)
    assert only_icu.total == Decimal("72.00")
