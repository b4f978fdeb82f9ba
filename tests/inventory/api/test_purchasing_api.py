"""Purchasing over the API: plans, orders, deliveries against them, the reports; refusals and scope."""
import datetime

import pytest

from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db


def order_body(supplier, product, quantity=2, **line):
    return {
        "supplier": supplier.pk, "promised_date": str(TODAY + datetime.timedelta(days=2)),
        "lines": [{"product": product.pk, "quantity": quantity, "platform_reference": "YG-1", **line}],
    }


def test_order_created_delivered_short_and_closed(api, supplier, product, warehouse):
    created = api.post("/api/v1/purchase-orders/", order_body(supplier, product, 2), format="json")
    assert created.status_code == 201, created.json()
    order = created.json()
    assert (order["status"], order["lines"][0]["outstanding"]) == ("OPEN", 2)

    note = api.post("/api/v1/delivery-notes/", {
        "supplier": supplier.pk, "number": "DN-1", "receiving_location": warehouse.pk, "purchase_order": order["id"],
        "idempotency_key": "rcv-1", "lines": [{"udi": gs1_udi(product.udi_di, serial="S1"), "unit_price": "1200.00"}],
    }, format="json").json()
    assert note["purchase_order"] == order["id"]
    api.post(f"/api/v1/delivery-notes/{note['id']}/scan/", {"udi": gs1_udi(product.udi_di, serial="S1")}, format="json")
    accepted = api.post(f"/api/v1/delivery-notes/{note['id']}/accept/", {"idempotency_key": "acc-1"}, format="json")
    assert accepted.status_code == 200

    partly = api.get(f"/api/v1/purchase-orders/{order['id']}/").json()
    assert (partly["status"], partly["lines"][0]["delivered_quantity"], partly["delivery_notes"]) == (
        "PARTLY_DELIVERED", 1, [note["id"]]
    )
    closed = api.post(f"/api/v1/purchase-orders/{order['id']}/close/", {"reason": "余量取消"}, format="json")
    assert (closed.status_code, closed.json()["status"]) == (200, "CLOSED")
    again = api.post(f"/api/v1/purchase-orders/{order['id']}/close/", {"reason": "again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "ORDER_NOT_OPEN")

    performance = api.get("/api/v1/purchasing/delivery-performance/", {
        "period_start": str(TODAY), "period_end": str(TODAY + datetime.timedelta(days=5)),
    }).json()
    assert [(row["supplier"], row["fill_rate"]) for row in performance] == [(supplier.pk, "50.0")]
    rate = api.get("/api/v1/purchasing/platform-rate/", {"period_start": str(TODAY), "period_end": str(TODAY)}).json()
    assert [row["rate"] for row in rate] == ["100.00"]


def test_order_refusals_answer_400_with_each_lines_reason(api, supplier, product):
    product.nhsa_code = ""
    product.save()
    response = api.post("/api/v1/purchase-orders/", order_body(supplier, product, platform_reference=""), format="json")

    assert response.status_code == 400
    body = response.json()
    assert [problem["code"] for problem in body["problems"]] == ["PLATFORM_REFERENCE_REQUIRED", "NHSA_CODE_MISSING"]
    assert [problem["item"] for problem in body["problems"]] == [1, 1]


def test_emergency_line_by_a_keeper_is_403_and_by_an_operator_201(api, operator, supplier, product):
    body = order_body(supplier, product, platform_reference="", emergency_reason="急诊")
    assert api.post("/api/v1/purchase-orders/", body, format="json").json()["code"] == "EMERGENCY_NOT_AUTHORISED"
    created = api_client_for(operator).post("/api/v1/purchase-orders/", body, format="json")
    assert created.status_code == 201
    assert created.json()["lines"][0]["emergency_by"] == operator.pk


def test_plan_by_hand_then_ordered_per_supplier(api, supplier, product, lot_product):
    plan = api.post("/api/v1/purchase-plans/", {"source": "by hand", "lines": [
        {"product": product.pk, "quantity": 1, "platform_reference": "YG-9"},
        {"product": lot_product.pk, "quantity": 20},
    ]}, format="json")
    assert plan.status_code == 201, plan.json()
    assert [line["supplier"] for line in plan.json()["lines"]] == [supplier.pk, supplier.pk]

    orders = api.post(f"/api/v1/purchase-plans/{plan.json()['id']}/order/", {"promised_date": str(TODAY)},
                      format="json")
    assert orders.status_code == 201
    assert [len(order["lines"]) for order in orders.json()] == [2]
    again = api.post(f"/api/v1/purchase-plans/{plan.json()['id']}/order/", {"promised_date": str(TODAY)},
                     format="json")
    assert (again.status_code, again.json()["code"]) == (409, "PLAN_ALREADY_ORDERED")


def test_bad_input_is_400_with_the_field(api, supplier, product):
    cases = [
        ({**order_body(supplier, product), "lines": []}, "lines"),
        (order_body(supplier, product, quantity=0), "lines"),
        ({**order_body(supplier, product), "promised_date": "9999-12-31"}, "promised_date"),
        ({**order_body(supplier, product), "supplier": 987654}, "supplier"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/purchase-orders/", body, format="json")
        assert response.status_code == 400, body
        assert field in str(response.json()["problems"]), response.json()
    bad_period = api.get("/api/v1/purchasing/platform-rate/", {"period_start": "2026-02-01", "period_end": "2026-01-01"})
    assert bad_period.status_code == 400


def test_another_hospitals_orders_and_products_are_not_found(api, supplier, product, other_hospital):
    foreign = factories.SupplyAgreementFactory(product__hospital=other_hospital, supplier=supplier)
    stranger = api_client_for(factories.UserFactory(hospital=other_hospital, roles=["spd_operator"]))
    foreign_order = stranger.post("/api/v1/purchase-orders/", order_body(supplier, foreign.product), format="json")
    assert foreign_order.status_code == 201
    order_id = foreign_order.json()["id"]

    assert api.get(f"/api/v1/purchase-orders/{order_id}/").status_code == 404
    assert api.post(f"/api/v1/purchase-orders/{order_id}/close/", {"reason": "x"}, format="json").status_code == 404
    assert api.get("/api/v1/purchase-orders/").json()["count"] == 0
    borrowed = api.post("/api/v1/purchase-orders/", order_body(supplier, foreign.product), format="json")
    assert borrowed.status_code == 400


def test_nurses_do_not_read_purchasing(cath_lab_store, hospital):
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    client = api_client_for(nurse)
    assert client.get("/api/v1/purchase-orders/").status_code == 403
    assert client.get("/api/v1/purchasing/platform-rate/", {"period_start": str(TODAY),
                                                           "period_end": str(TODAY)}).status_code == 403
