import datetime

import pytest
from rest_framework.test import APIClient

from inventory.models import Movement, Unit
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY, gs1_udi

pytestmark = pytest.mark.django_db


def deliver(api, supplier, warehouse, lines, *, number="DN-1", key="k-dn-1", **extra):
    body = {"supplier": supplier.pk, "number": number, "receiving_location": warehouse.pk, "lines": lines, **extra}
    return api.post("/api/v1/delivery-notes/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def accept(api, note_id, key="k-acc-1", **body):
    return api.post(f"/api/v1/delivery-notes/{note_id}/accept/", {"idempotency_key": key, **body}, format="json")


def scan_all(api, note):
    """The keeper scans each delivered unit against the note (unscanned units are not accepted)."""
    for line in note.data["lines"]:
        assert api.post(f"/api/v1/delivery-notes/{note.data['id']}/scan/", {"udi": line["raw_udi"]}).status_code == 200


@pytest.fixture
def stocked_unit(api, supplier, warehouse, product):
    note = deliver(api, supplier, warehouse, [{"udi": gs1_udi(product.udi_di, serial="SN1"), "unit_price": "1200.00"}])
    scan_all(api, note)
    accept(api, note.data["id"])
    return Unit.objects.get(serial="SN1")


def test_delivery_note_is_received_then_accepted_line_by_line(api, supplier, warehouse, product):
    lines = [
        {"udi": gs1_udi(product.udi_di, serial="A1"), "unit_price": "1200.00"},
        {"udi": gs1_udi(product.udi_di, serial="A2"), "unit_price": "1500.00"},
    ]
    received = deliver(api, supplier, warehouse, lines)
    assert received.status_code == 201, received.data
    assert received.data["status"] == "RECEIVED"
    assert [line["serial"] for line in received.data["lines"]] == ["A1", "A2"]

    scan_all(api, received)
    accepted = accept(api, received.data["id"])
    assert accepted.status_code == 200, accepted.data
    results = [(line["acceptance"]["decision"], line["acceptance"]["reason_code"]) for line in accepted.data["lines"]]
    assert results == [("ACCEPTED", ""), ("REJECTED", "PRICE_MISMATCH")]
    assert accepted.data["lines"][0]["unit"] == Unit.objects.get(serial="A1").pk
    assert accepted.data["lines"][1]["unit"] is None


def test_replaying_a_delivery_returns_the_first_note_and_different_content_is_409(api, supplier, warehouse, product):
    lines = [{"udi": gs1_udi(product.udi_di, serial="A1"), "unit_price": "1200.00"}]
    first = deliver(api, supplier, warehouse, lines)
    again = deliver(api, supplier, warehouse, lines)
    assert again.data["id"] == first.data["id"]

    conflict = deliver(api, supplier, warehouse, lines, number="DN-9")
    assert conflict.status_code == 409
    assert conflict.data["code"] == "IDEMPOTENCY_CONFLICT"


def test_lot_tracked_delivery_line_by_product_lot_and_quantity(api, supplier, warehouse, lot_product):
    expiry = (TODAY + datetime.timedelta(days=700)).isoformat()
    line = {"product": lot_product.pk, "lot": "L1", "expiry": expiry, "quantity": 50, "unit_price": "3.50"}
    note = deliver(api, supplier, warehouse, [line])
    assert accept(api, note.data["id"]).data["lines"][0]["acceptance"]["decision"] == "ACCEPTED"
    assert lot_product.lot_balances.get(location=warehouse).quantity == 50


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"unit_price": "1"}]}, "lines[0]"),
        ({"lines": [{"udi": "x", "unit_price": "-1"}]}, "lines[0].unit_price"),
        ({"supplier": 999999}, "supplier"),
    ],
)
def test_invalid_delivery_is_400_naming_the_field_and_records_nothing(api, supplier, warehouse, body, field):
    payload = {
        "supplier": supplier.pk, "number": "N", "receiving_location": warehouse.pk, "idempotency_key": "k",
        "lines": [{"udi": "x", "unit_price": "1"}], **body,
    }
    response = api.post("/api/v1/delivery-notes/", payload, format="json")
    assert response.status_code == 400
    assert response.data["code"] == "INVALID_REQUEST"
    assert field in [problem["field"] for problem in response.data["problems"]]
    assert not Movement.objects.exists()


def test_missing_idempotency_key_is_400(api, supplier, warehouse, product):
    body = {"supplier": supplier.pk, "number": "N", "receiving_location": warehouse.pk,
            "lines": [{"udi": gs1_udi(product.udi_di, serial="A"), "unit_price": "1200"}]}
    response = api.post("/api/v1/delivery-notes/", body, format="json")
    assert response.status_code == 400
    assert "idempotency_key" in response.data["detail"]


def test_error_messages_follow_the_callers_language(api, supplier, warehouse, product):
    note = deliver(api, supplier, warehouse, [{"udi": gs1_udi(product.udi_di, serial="A1"), "unit_price": "1"}])
    zh = accept(api, note.data["id"]).data["lines"][0]["acceptance"]["reasons"][0]["detail"]
    assert "协议价" in zh
    accepted_twice = api.post(
        f"/api/v1/delivery-notes/{note.data['id']}/accept/", {"idempotency_key": "other"}, format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert accepted_twice.status_code == 409
    assert accepted_twice.data["detail"] == "Delivery note DN-1 has already been accepted."


def test_units_list_filters_and_trace_tells_the_whole_story(api, stocked_unit, cath_lab_store, product):
    by_udi = api.get("/api/v1/units/", {"udi": f"(01){product.udi_di}(21)SN1"})
    assert [u["id"] for u in by_udi.data["results"]] == [stocked_unit.pk]
    assert api.get("/api/v1/units/", {"status": "CONSUMED"}).data["count"] == 0
    assert api.get("/api/v1/units/", {"expiring_before": TODAY.isoformat()}).data["count"] == 0
    assert api.get("/api/v1/units/", {"serial": "SN1", "location": stocked_unit.location_id}).data["count"] == 1

    moved = api.post(
        "/api/v1/transfers/",
        {"udis": [gs1_udi(product.udi_di, serial="SN1")], "to_location": cath_lab_store.pk, "idempotency_key": "t1"},
        format="json",
    )
    assert moved.status_code == 201, moved.data

    trace = api.get(f"/api/v1/units/{stocked_unit.pk}/trace/").data
    assert [event["kind"] for event in trace] == [
        "ORIGIN", "DELIVERY", "ACCEPTANCE", "MOVEMENT_RECEIPT", "MOVEMENT_PUTAWAY", "MOVEMENT_TRANSFER",
    ]
    assert trace[0]["details"]["registration_certificate"] == product.registration_certificate.number
    assert trace[-1]["details"]["to_location"] == cath_lab_store.name
    assert trace[-1]["details"]["actor"] == "keeper"


def test_transfer_return_and_scrap_move_units_with_reasons(api, stocked_unit, supplier, cath_lab_store):
    transfer = api.post(
        "/api/v1/transfers/", {"units": [stocked_unit.pk], "to_location": cath_lab_store.pk, "idempotency_key": "t"},
        format="json",
    )
    assert transfer.status_code == 201
    assert transfer.data["movements"][0]["to_status"] == "IN_STOCK"

    no_reason = api.post(
        "/api/v1/returns/", {"units": [stocked_unit.pk], "supplier": supplier.pk, "idempotency_key": "r"}, format="json"
    )
    assert no_reason.status_code == 400
    returned = api.post(
        "/api/v1/returns/",
        {"units": [stocked_unit.pk], "supplier": supplier.pk, "reason_code": "DAMAGED_PACKAGING", "idempotency_key": "r"},
        format="json",
    )
    assert returned.status_code == 201, returned.data
    stocked_unit.refresh_from_db()
    assert (stocked_unit.status, stocked_unit.location) == ("RETURNED_TO_SUPPLIER", None)

    scrapped = api.post(
        "/api/v1/scraps/", {"units": [stocked_unit.pk], "reason_code": "DAMAGED", "idempotency_key": "s"}, format="json"
    )
    assert scrapped.status_code == 409
    assert scrapped.data["code"] == "ILLEGAL_TRANSITION"


def test_movements_are_listed_with_filters(api, stocked_unit, warehouse):
    response = api.get("/api/v1/movements/", {"unit": stocked_unit.pk, "location": warehouse.pk})
    assert [m["kind"] for m in response.data["results"]] == ["RECEIPT", "PUTAWAY"]
    assert response.data["results"][0]["actor"] == "keeper"
    assert api.get("/api/v1/movements/", {"kind": "SCRAP"}).data["count"] == 0


def test_unknown_udi_in_a_transfer_names_the_scan(api, stocked_unit, cath_lab_store, product):
    response = api.post(
        "/api/v1/transfers/",
        {"udis": ["garbage", gs1_udi(product.udi_di, serial="NOPE")], "to_location": cath_lab_store.pk,
         "idempotency_key": "t"},
        format="json",
    )
    assert response.status_code == 404
    assert [p["code"] for p in response.data["problems"]] == ["UDI_UNPARSEABLE", "NOT_FOUND"]
    assert response.data["problems"][0]["item"] == "garbage"


def test_auditor_and_nurse_cannot_move_stock(auditor, hospital, stocked_unit, cath_lab_store, supplier, warehouse):
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    for user, sees in ((auditor, 1), (nurse, 0)):  # the unit is in the central warehouse, no nurse's department
        client = api_client_for(user)
        assert client.get("/api/v1/units/").data["count"] == sees
        response = client.post(
            "/api/v1/transfers/", {"units": [stocked_unit.pk], "to_location": cath_lab_store.pk, "idempotency_key": "x"},
            format="json",
        )
        assert response.status_code == 403
        assert deliver(client, supplier, warehouse, []).status_code == 403


def test_another_hospitals_stock_does_not_exist_for_the_caller(stocked_unit, other_hospital, supplier):
    stranger = factories.UserFactory(hospital=other_hospital, roles=["warehouse"])
    elsewhere = factories.LocationFactory(hospital=other_hospital)
    client = api_client_for(stranger)
    note_id = stocked_unit.delivery_line.note_id

    assert client.get("/api/v1/units/").data["count"] == 0
    assert client.get("/api/v1/movements/").data["count"] == 0
    assert client.get("/api/v1/delivery-notes/").data["count"] == 0
    for url in (f"/api/v1/units/{stocked_unit.pk}/", f"/api/v1/units/{stocked_unit.pk}/trace/",
                f"/api/v1/delivery-notes/{note_id}/"):
        response = client.get(url)
        assert (response.status_code, response.data["code"]) == (404, "NOT_FOUND")
    assert accept(client, note_id).status_code == 404
    transfer = client.post(
        "/api/v1/transfers/", {"units": [stocked_unit.pk], "to_location": elsewhere.pk, "idempotency_key": "x"},
        format="json",
    )
    assert transfer.status_code == 400
    stocked_unit.refresh_from_db()
    assert stocked_unit.status == "IN_STOCK"


def test_every_endpoint_requires_authentication(db):
    client = APIClient()
    for url in ("/api/v1/units/", "/api/v1/movements/", "/api/v1/delivery-notes/"):
        assert client.get(url).status_code in (401, 403)
    assert client.post("/api/v1/transfers/", {}, format="json").status_code in (401, 403)


def test_token_login_and_lockout_after_repeated_failures(keeper):
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "keeper", "password": "pw-Secret-123"}).data["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/units/").status_code == 200

    anonymous = APIClient()
    for _ in range(4):
        wrong = anonymous.post("/api/v1/auth/token/", {"username": "keeper", "password": "wrong"})
        assert wrong.status_code == 400
        assert wrong.data["code"] == "INVALID_CREDENTIALS"
    fifth = anonymous.post("/api/v1/auth/token/", {"username": "keeper", "password": "wrong"})
    assert fifth.status_code == 429
    locked = anonymous.post("/api/v1/auth/token/", {"username": "keeper", "password": "pw-Secret-123"})
    assert (locked.status_code, locked.json()["code"]) == (429, "LOCKED_OUT")


def test_api_docs_and_schema_are_served_offline(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/delivery-notes/" in schema.content
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
