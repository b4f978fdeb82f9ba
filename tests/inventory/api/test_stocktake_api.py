"""The stocktake API: the whole count by scan over HTTP, scoping by hospital and role, bad input."""
import hashlib

import pytest

from inventory.models import Movement, StocktakeSession
from tests import factories
from tests.conftest import api_client_for, stock_units

pytestmark = pytest.mark.django_db
API = "/api/v1/stocktakes"


@pytest.fixture
def units(keeper_actor, supplier, warehouse, product):
    return stock_units(keeper_actor, supplier, warehouse, product, ["A1", "A2"])



@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def counter(hospital):
    return factories.UserFactory(username="counter", hospital=hospital, roles=["warehouse"])


@pytest.fixture
def approver(hospital):
    return factories.UserFactory(username="approver", hospital=hospital, roles=["spd_operator"])


def start(client, *locations, **extra):
    response = client.post(f"{API}/", {"locations": [location.pk for location in locations], **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_count_by_scan_submitted_and_approved_posts_its_adjustment(counter, approver, warehouse, units, settings):
    settings.SPD_STOCKTAKE_RECOUNT_VALUE = "1000000"
    settings.SPD_STOCKTAKE_RECOUNT_QUANTITY = 5
    client = api_client_for(counter)
    session = start(client, warehouse)
    assert all(line["expected_quantity"] is None for line in session["lines"]), "blind while counting"
    response = client.post(f"{API}/{session['id']}/counts/", {"location": warehouse.pk, "udi": units[0].udi_raw},
                           format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["counted_quantity"] == 1 and response.json()["variance"] is None
    submitted = client.post(f"{API}/{session['id']}/submit/").json()
    assert {line["serial"]: line["variance"] for line in submitted["lines"]} == {"A1": 0, "A2": -1}
    approved = api_client_for(approver).post(f"{API}/{session['id']}/approve/", {"idempotency_key": "ap-1"},
                                             format="json")
    assert approved.status_code == 200, approved.json()
    body = approved.json()
    assert body["status"] == "APPROVED" and body["reports"]["csv"]["sha256"]
    again = api_client_for(approver).post(f"{API}/{session['id']}/approve/", {"idempotency_key": "ap-1"},
                                          format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    other_key = api_client_for(approver).post(f"{API}/{session['id']}/approve/", {"idempotency_key": "ap-2"},
                                              format="json")
    assert other_key.status_code == 409 and other_key.json()["code"] == "STOCKTAKE_NOT_OPEN"
    (movement,) = Movement.objects.filter(document_type="STOCKTAKE", document_id=session["id"])
    assert (movement.kind, movement.reason_code, movement.unit_id) == ("ADJUSTMENT", "LOST", units[1].pk)
    report = client.get(f"{API}/{session['id']}/report.csv")
    data = b"".join(report.streaming_content)
    assert hashlib.sha256(data).hexdigest() == report["X-Content-SHA256"] == body["reports"]["csv"]["sha256"]
    history = client.get(f"{API}/history/", {"location": warehouse.pk}).json()
    assert [(row["session"], row["accuracy"]) for row in history] == [(session["id"], 50.0)]


def test_the_counter_cannot_approve_their_own_variance_over_the_threshold(counter, warehouse, units):
    counter.groups.add(factories.UserFactory(roles=["spd_operator"]).groups.get())
    client = api_client_for(counter)
    session = start(client, warehouse)
    client.post(f"{API}/{session['id']}/submit/")
    response = client.post(f"{API}/{session['id']}/approve/", {"idempotency_key": "self"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "STOCKTAKE_RECOUNT_REQUIRED"
    for line in client.get(f"{API}/{session['id']}/").json()["lines"]:
        refused = client.post(f"{API}/{session['id']}/lines/{line['id']}/recount/", {"quantity": 0}, format="json")
        assert refused.status_code == 409 and refused.json()["code"] == "STOCKTAKE_RECOUNT_BY_COUNTER"
    assert not Movement.objects.filter(document_type="STOCKTAKE").exists()


def test_lot_counts_accept_packaging_units_and_refuse_bad_input_with_the_field(counter, warehouse, lot_product):
    from inventory.models import PackagingUnit

    PackagingUnit.objects.create(product=lot_product, name="盒", factor=10)
    client = api_client_for(counter)
    session = start(client, warehouse)
    url = f"{API}/{session['id']}/counts/"
    ok = client.post(url, {"location": warehouse.pk, "product": lot_product.pk, "lot": "X9", "quantity": "1.5",
                           "packaging_unit": "盒"}, format="json")
    assert ok.status_code == 200 and ok.json()["counted_quantity"] == 15 and ok.json()["reason"] == "FOUND"
    for body, field in (
        ({"location": warehouse.pk}, ""),
        ({"location": warehouse.pk, "product": lot_product.pk, "lot": "X9"}, "quantity"),
        ({"location": warehouse.pk, "product": lot_product.pk, "lot": "X9", "quantity": -1}, "quantity"),
        ({"location": warehouse.pk, "udi": "x", "product": lot_product.pk}, ""),
        ({"location": warehouse.pk, "unit": 99999999}, "unit"),
        ({"location": warehouse.pk, "product": lot_product.pk, "lot": "X9", "quantity": 1, "quality": "WET"},
         "quality"),
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert response.json()["code"] == "INVALID_REQUEST"
        assert field in [problem.get("field", "") for problem in response.json()["problems"]], response.json()
    unparseable = client.post(url, {"location": warehouse.pk, "udi": "not a udi"}, format="json")
    assert unparseable.status_code == 400 and unparseable.json()["code"] == "UDI_UNPARSEABLE"
    unknown_unit = client.post(url, {"location": warehouse.pk, "product": lot_product.pk, "lot": "X9", "quantity": 1,
                                     "packaging_unit": "箱"}, format="json")
    assert unknown_unit.status_code == 400 and unknown_unit.json()["code"] == "UNKNOWN_PACKAGING_UNIT"


def test_another_hospitals_session_is_a_404_and_auditors_only_read(counter, auditor, warehouse, other_hospital):
    session = start(api_client_for(counter), warehouse)
    stranger = factories.UserFactory(hospital=other_hospital, roles=["admin"])
    assert api_client_for(stranger).get(f"{API}/{session['id']}/").status_code == 404
    assert api_client_for(stranger).post(f"{API}/{session['id']}/submit/").status_code == 404
    assert api_client_for(stranger).get(f"{API}/").json()["count"] == 0
    reader = api_client_for(auditor)
    assert reader.get(f"{API}/{session['id']}/").status_code == 200
    assert reader.get(f"{API}/{session['id']}/sheet/{warehouse.pk}.pdf").status_code == 200
    assert reader.post(f"{API}/{session['id']}/submit/").status_code == 403
    assert reader.post(f"{API}/", {"locations": [warehouse.pk]}, format="json").status_code == 403
    foreign = factories.LocationFactory(hospital=other_hospital, code="X")
    bad = api_client_for(counter).post(f"{API}/", {"locations": [foreign.pk]}, format="json")
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "locations"


def test_nurses_count_and_see_only_their_departments(hospital, warehouse, cath_lab_store, counter):
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    nurse.departments.add(cath_lab_store.department)
    client = api_client_for(nurse)
    mine = start(client, cath_lab_store)
    theirs = start(api_client_for(counter), warehouse)
    assert [row["id"] for row in client.get(f"{API}/").json()["results"]] == [mine["id"]]
    assert client.get(f"{API}/{theirs['id']}/").status_code == 404
    refused = client.post(f"{API}/", {"locations": [warehouse.pk]}, format="json")
    assert refused.status_code in (400, 404)
    assert client.get(f"{API}/history/", {"location": warehouse.pk}).status_code == 404
    assert client.get(f"{API}/history/").status_code == 400


def test_a_frozen_count_makes_the_transfer_api_answer_409_naming_it(api, counter, warehouse, cath_lab_store, units):
    session = start(api_client_for(counter), warehouse, freeze_outgoing=True)
    response = api.post("/api/v1/transfers/", {"units": [units[0].pk], "to_location": cath_lab_store.pk,
                                               "idempotency_key": "t-frozen"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "STOCKTAKE_FROZEN"
    assert f"{session['id']}" in response.json()["detail"]
    assert StocktakeSession.objects.get(pk=session["id"]).status == "COUNTING"
