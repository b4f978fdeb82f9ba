"""Pages of units of measure and department expensing: the 科室耗材成本 page and its downloads, "3 盒
4 支" on the lots page, a lot line received in boxes on the receiving page."""
import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from inventory.models import PackagingUnit, ReceivingDraft
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.factories import TODAY
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db

EXPIRY = TODAY + datetime.timedelta(days=700)


@pytest.fixture
def expensed(hospital, supplier, warehouse, keeper_actor, cath_lab_store):
    """Gauze (片; 包 = 10 片, 1.20 a 片) received as 5 包; 34 片 sent to the cath lab and expensed there."""
    product = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False, product__name="医用纱布",
        product__his_charge_code="", product__unit_of_measure="片", product__expensed_on_issue=True,
        unit_price=Decimal("1.20"), supplier=supplier,
    ).product
    PackagingUnit.objects.create(product=product, name="包", factor=10, is_purchase_unit=True)
    note = receive_delivery_note(actor=keeper_actor, hospital=hospital, supplier=supplier, number="DN-GZ",
                                 receiving_location=warehouse, idempotency_key="rcv-gz",
                                 lines=[LineInput(Decimal("12.00"), product=product, lot="G1", expiry=EXPIRY,
                                                  quantity=5, unit="包")])
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-gz")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, idempotency_key="to-cath",
                   lots=[LotQuantity(product, "G1", 34, warehouse)])
    return product


def test_the_department_cost_page_shows_each_department_and_product_at_cost(keeper, expensed):
    response = client_for(keeper).get(reverse("web:department-cost"))
    assert response.status_code == 200
    page = text(response)
    assert 'data-row="CATH/' in page and "医用纱布" in page
    assert "34 片" in page and "3 包 4 片" in page
    assert "¥40.80" in page  # 34 × 1.20
    assert 'data-subtotal="CATH"' in page


def test_the_department_cost_page_speaks_chinese(keeper, expensed):
    page = text(client_for(keeper, "zh-hans").get(reverse("web:department-cost")))
    assert "科室耗材成本" in page and "全部科室" in page


def test_the_downloads_hold_base_units(keeper, expensed):
    keeper_client = client_for(keeper)
    response = keeper_client.get(reverse("web:department-cost"), {"export": "csv"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["科室编码", "科室", "院内码", "产品名称", "规格型号", "库存单位", "数量", "金额"]
    assert rows[1][0] == "CATH" and rows[1][5:] == ["片", "34", "40.80"]
    workbook = load_workbook(io.BytesIO(keeper_client.get(reverse("web:department-cost"), {"export": "xlsx"}).content))
    sheet = workbook.active
    values = [cell.value for cell in sheet[2]]
    assert values[5:7] == ["片", 34] and Decimal(str(values[7])) == Decimal("40.8")


def test_a_nurse_sees_only_her_departments_costs(hospital, expensed):
    stranger = factories.UserFactory(username="nurse-icu", hospital=hospital, roles=["nurse"])
    icu = factories.DepartmentFactory(hospital=hospital, code="ICU", name="重症医学科")
    factories.LocationFactory(hospital=hospital, department=icu, code="ICU-S", name="ICU 二级库", kind="DEPARTMENT_STORE")
    stranger.departments.add(icu)
    page = text(client_for(stranger).get(reverse("web:department-cost")))
    assert "医用纱布" not in page and "data-row=" not in page


def test_a_backwards_period_is_shown_as_a_problem(keeper, expensed):
    response = client_for(keeper).get(reverse("web:department-cost"), {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400
    assert "data-row=" not in text(response)


def test_an_earlier_period_is_empty(keeper, expensed):
    day = (timezone.localdate() - datetime.timedelta(days=40)).isoformat()
    page = text(client_for(keeper).get(reverse("web:department-cost"), {"start": day, "end": day}))
    assert "data-row=" not in page and "¥0.00" in page


def test_the_lots_page_shows_quantities_in_packs(keeper, expensed, hospital, keeper_actor, warehouse):
    page = text(client_for(keeper).get(reverse("web:stock-lots")))
    assert "16 片" in page and "1 包 6 片" in page


def test_a_lot_line_typed_in_boxes_is_received_in_pieces(keeper, supplier, warehouse, lot_product):
    lot_product.unit_of_measure = "支"
    lot_product.save()
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    client = client_for(keeper)
    created = client.post(reverse("web:receiving-new"), {
        "supplier": supplier.pk, "number": "DN-BOXES", "receiving_location": warehouse.pk})
    assert created.status_code == 302
    key = ReceivingDraft.objects.get().key
    line = {"product": lot_product.pk, "lot": "B1", "expiry": EXPIRY.isoformat(), "quantity": 3}
    refused = client.post(reverse("web:receiving-draft-lot", args=[key]), {**line, "unit": "盒", "unit_price": "35.05"})
    assert refused.status_code == 400 and ReceivingDraft.objects.get().lines == []
    assert 'data-code="PRICE_NOT_WHOLE_CENTS_PER_BASE_UNIT"' in text(refused)
    unknown = client.post(reverse("web:receiving-draft-lot", args=[key]), {**line, "unit": "瓶"})
    assert unknown.status_code == 400 and ReceivingDraft.objects.get().lines == []
    assert 'data-code="UNKNOWN_PACKAGING_UNIT"' in text(unknown)
    added = client.post(reverse("web:receiving-draft-lot", args=[key]), {**line, "unit": "盒"})
    assert added.status_code in (200, 302)
    stored = ReceivingDraft.objects.get().lines
    assert [(row["quantity"], row["unit"], row["price"]) for row in stored] == [(3, "盒", "35.00")]  # agreement 3.50 × 10
    page = text(client.get(reverse("web:receiving-draft", args=[key])))
    assert 'value="3" inputmode="numeric" data-quantity> 盒<small data-received-as>= 30 支</small>' in page
    assert "¥35.00" not in page and "¥3.50" in page  # the line as it will be recorded: per 支


def test_the_reconciliation_page_shows_what_was_expensed(operator, hospital, expensed, cath_lab_store):
    from inventory.services.reconciliation import run_reconciliation

    today = timezone.localdate()
    run = run_reconciliation(hospital=hospital, period_start=today, period_end=today)
    page = text(client_for(operator).get(reverse("web:reconciliation-run", args=[run.pk])))
    assert 'data-total="expensed"' in page
    row = page[page.index(f'data-row="{cath_lab_store.code}/{expensed.internal_code}"'):]
    row = row[:row.index("</tr>")]
    cells = [cell.split(">")[-1] for cell in row.split("</td>")[:-1]]
    assert cells[-3:] == ["34", "0", "0"]  # expensed, processed (packs), closing
