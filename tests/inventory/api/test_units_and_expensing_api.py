"""Packaging units on the product API, deliveries in a packaging unit, a department count and the
科室耗材成本 report over the API."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import LotBalance, Movement, PackagingUnit, PackagingUnitChange
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY

pytestmark = pytest.mark.django_db

EXPIRY = (TODAY + datetime.timedelta(days=700)).isoformat()


@pytest.fixture
def operator_api(operator):
    return api_client_for(operator)


def product_body(hospital, **extra):
    manufacturer = factories.ManufacturerFactory()
    return {
        "internal_code": "GZ001", "name": "医用纱布", "manufacturer": manufacturer.pk, "udi_di": factories.gtin(9999),
        "tracking": "LOT", "unit_of_measure": "片", **extra,
    }


def problem_fields(response) -> list[str]:
    return [problem.get("field") or problem.get("item") for problem in response.data["problems"]]


@pytest.mark.postgres
def test_packaging_units_are_read_and_replaced_with_the_product_and_their_history_kept(operator_api, hospital):
    body = product_body(hospital, expensed_on_issue=True, packaging_units=[
        {"name": "包", "factor": 10, "is_purchase_unit": True}, {"name": "箱", "factor": 200},
    ])
    created = operator_api.post("/api/v1/products/", body, format="json")
    assert created.status_code == 201, created.data
    assert created.data["expensed_on_issue"] is True
    assert [(u["name"], u["factor"], u["is_purchase_unit"]) for u in created.data["packaging_units"]] == [
        ("箱", 200, False), ("包", 10, True)]
    pk = created.data["id"]
    changed = operator_api.patch(f"/api/v1/products/{pk}/", {"packaging_units": [
        {"name": "包", "factor": 10, "is_purchase_unit": True, "is_billing_unit": False},
        {"name": "盒", "factor": 50},
    ]}, format="json")
    assert changed.status_code == 200, changed.data
    assert [u["name"] for u in changed.data["packaging_units"]] == ["盒", "包"]
    assert sorted(PackagingUnit.objects.filter(product_id=pk).values_list("name", "factor")) == [("包", 10), ("盒", 50)]
    # 包 unchanged: created once; 箱 removed; 盒 added
    events = sorted(PackagingUnitChange.objects.filter(product_id=pk).values_list("name", "pgh_label"))
    assert events == [("包", "create"), ("盒", "create"), ("箱", "create"), ("箱", "delete")]
    history = operator_api.get("/api/v1/history/", {"kind": "packaging-units"})
    assert history.status_code == 200, history.data
    untouched = operator_api.patch(f"/api/v1/products/{pk}/", {"name": "医用纱布 8 层"}, format="json")
    assert [u["name"] for u in untouched.data["packaging_units"]] == ["盒", "包"]


def test_bad_packaging_units_are_a_400_naming_the_field(operator_api, hospital):
    body = product_body(hospital, packaging_units=[
        {"name": "包", "factor": 10, "is_purchase_unit": True}, {"name": "片", "factor": 20},
        {"name": "包", "factor": 30, "is_purchase_unit": True}, {"name": "箱", "factor": 1},
    ])
    response = operator_api.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400
    fields = problem_fields(response)
    assert "packaging_units[3].factor" in fields
    response = operator_api.post("/api/v1/products/", {**body, "packaging_units": body["packaging_units"][:3]},
                                 format="json")
    assert response.status_code == 400
    assert {"packaging_units[1].name", "packaging_units[2].name", "packaging_units[2].is_purchase_unit"} <= set(
        problem_fields(response))


def test_an_expensed_item_with_a_charge_code_is_a_400(operator_api, hospital):
    response = operator_api.post("/api/v1/products/", product_body(hospital, expensed_on_issue=True,
                                                                   his_charge_code="HIS9"), format="json")
    assert response.status_code == 400 and problem_fields(response) == ["expensed_on_issue"]


@pytest.fixture
def boxed(lot_product):
    lot_product.unit_of_measure = "支"
    lot_product.save()
    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10, is_purchase_unit=True)
    return lot_product


def deliver(api, supplier, warehouse, product, number="DN-BOX", **line):
    body = {"supplier": supplier.pk, "number": number, "receiving_location": warehouse.pk, "idempotency_key": number,
            "lines": [{"product": product.pk, "lot": "B1", "expiry": EXPIRY, **line}]}
    return api.post("/api/v1/delivery-notes/", body, format="json")


def test_a_delivery_line_in_boxes_is_recorded_in_pieces_and_shown_as_boxes(api, supplier, warehouse, boxed):
    response = deliver(api, supplier, warehouse, boxed, quantity=3, unit="盒", unit_price="35.00")
    assert response.status_code == 201, response.data
    line = response.data["lines"][0]
    assert (line["quantity"], line["unit_price"], line["received_unit"], line["received_as"]) == (30, "3.50", "盒", "3 盒")
    accepted = api.post(f"/api/v1/delivery-notes/{response.data['id']}/accept/", {"idempotency_key": "acc"},
                        format="json")
    assert accepted.status_code == 200, accepted.data
    assert Movement.objects.get(kind=Movement.Kind.RECEIPT).quantity == 30


@pytest.mark.parametrize("line,field,code", [
    ({"quantity": 3, "unit": "盒", "unit_price": "35.05"}, "lines[0].unit_price", "PRICE_NOT_WHOLE_CENTS_PER_BASE_UNIT"),
    ({"quantity": 3, "unit": "瓶", "unit_price": "35.00"}, "lines[0].unit", "UNKNOWN_PACKAGING_UNIT"),
])
def test_a_delivery_line_that_does_not_convert_exactly_is_a_400_naming_the_field(api, supplier, warehouse, boxed, line,
                                                                                   field, code):
    response = deliver(api, supplier, warehouse, boxed, **line)
    assert response.status_code == 400, response.data
    assert response.data["code"] == code and problem_fields(response) == [field]
    assert field in response.data["detail"]


@pytest.fixture
def gauze(hospital, supplier, warehouse, keeper_actor, cath_lab_store):
    """Forty 片 of gauze in the cath lab store, which expenses at its count; 包 = 10 片, 1.20 a 片."""
    agreement = factories.SupplyAgreementFactory(
        product__hospital=hospital, product__tracking="LOT", product__is_high_value=False, product__name="医用纱布",
        product__his_charge_code="", product__unit_of_measure="片", product__expensed_on_issue=True,
        unit_price=Decimal("1.20"), supplier=supplier,
    )
    product = agreement.product
    PackagingUnit.objects.create(product=product, name="包", factor=10, is_purchase_unit=True)
    department = cath_lab_store.department
    department.expense_at_count = True
    department.save()
    from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note

    note = receive_delivery_note(actor=keeper_actor, hospital=hospital, supplier=supplier, number="DN-GZ",
                                 receiving_location=warehouse, idempotency_key="rcv-gz",
                                 lines=[LineInput(Decimal("12.00"), product=product, lot="G1",
                                                  expiry=TODAY + datetime.timedelta(days=700), quantity=4, unit="包")])
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-gz")
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, idempotency_key="to-cath",
                   lots=[LotQuantity(product, "G1", 40, warehouse)])
    return product


def count(client, location, key, counted=None):
    body = {"location": location.pk, "idempotency_key": key}
    if counted is not None:
        body["counted"] = counted
    return client.post("/api/v1/department-expenses/", body, format="json")


def test_a_count_in_packs_expenses_the_rest_and_the_report_values_it(api, cath_lab_store, gauze):
    response = count(api, cath_lab_store, "count-1", [{"product": gauze.pk, "lot": "G1", "quantity": "1.5", "unit": "包"}])
    assert response.status_code == 201, response.data
    assert [(m["kind"], m["quantity"]) for m in response.data["movements"]] == [("DEPARTMENT_EXPENSE", 25)]
    assert LotBalance.objects.get(location=cath_lab_store).quantity == 15
    today = timezone.localdate().isoformat()
    report = api.get("/api/v1/department-cost/", {"start": today, "end": today})
    assert report.status_code == 200, report.data
    assert report.data["total"] == "30.00"  # 25 片 × 1.20
    row = report.data["rows"][0]
    assert (row["department_code"], row["product"], row["quantity"], row["quantity_described"], row["value"]) == (
        "CATH", gauze.pk, 25, "2 包 5 片", "30.00")


def test_a_count_that_is_not_whole_pieces_is_a_400_naming_the_field(api, cath_lab_store, gauze):
    response = count(api, cath_lab_store, "count-2", [{"product": gauze.pk, "lot": "G1", "quantity": "0.55", "unit": "包"}])
    assert response.status_code == 400
    assert response.data["code"] == "QUANTITY_NOT_WHOLE_BASE_UNITS"
    assert problem_fields(response) == ["counted[0].quantity"]
    assert not Movement.objects.filter(kind=Movement.Kind.DEPARTMENT_EXPENSE).exists()


def test_a_nurse_counts_her_own_department_only_and_an_auditor_not_at_all(hospital, cath_lab_store, gauze, auditor):
    nurse = factories.UserFactory(username="nurse-other", hospital=hospital, roles=["nurse"])
    response = count(api_client_for(nurse), cath_lab_store, "count-n")
    assert response.status_code == 403 and response.data["code"] == "NOT_YOUR_DEPARTMENT"
    assert count(api_client_for(auditor), cath_lab_store, "count-a").status_code == 403
    nurse.departments.add(cath_lab_store.department)
    assert count(api_client_for(nurse), cath_lab_store, "count-n").status_code == 201
    assert api_client_for(nurse).get("/api/v1/department-cost/").data["total"] == "48.00"


def test_the_report_refuses_a_backwards_period(api):
    response = api.get("/api/v1/department-cost/", {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400 and response.data["code"] == "PERIOD_INVALID"
