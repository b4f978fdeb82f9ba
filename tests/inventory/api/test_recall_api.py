"""Recalls and implant records over the API: roles, nurse scope, 409 on close, hashed exports."""
import hashlib

import pytest

from inventory.models import Unit
from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY
from tests.inventory.test_recall import nurse_of, ortho_store, quarantine, spread  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def open_by_api(client, product, **extra):
    return client.post("/api/v1/recalls/", {
        "scope": "UDI_DI", "udi_di": product.udi_di, "reason": "labelling error", "source": "NMPA",
        "notice_date": TODAY.isoformat(), **extra}, format="json")


def test_open_work_and_close_a_recall_over_the_api(operator, auditor, product, spread, quarantine, ortho_store,  # noqa: F811
                                                     other_hospital):
    api = api_client_for(operator)
    opened = open_by_api(api, product)
    assert opened.status_code == 201, opened.data
    recall = opened.data
    assert recall["progress"] == {"in_stock": 5, "located": 0, "returned": 0, "used": 3, "notified": 0,
                                  "closable": False}
    assert {item["encounter"] for item in recall["items"] if item["kind"] == "USED"} == {"ZY1", "ZY2", "ZY3"}

    auditor_api = api_client_for(auditor)
    assert auditor_api.get(f"/api/v1/recalls/{recall['id']}/").status_code == 200
    assert auditor_api.post(f"/api/v1/recalls/{recall['id']}/close/", {}, format="json").status_code == 403
    stranger = api_client_for(factories.UserFactory(hospital=other_hospital, roles=["admin"]))
    assert stranger.get(f"/api/v1/recalls/{recall['id']}/").status_code == 404

    nurse = api_client_for(nurse_of(ortho_store.department))
    seen = nurse.get(f"/api/v1/recalls/{recall['id']}/").data["items"]
    assert {item["serial"] for item in seen} == {"RC5", "RC6", "RC7"}
    assert nurse.get(f"/api/v1/recalls/{recall['id']}/export.csv").status_code == 403

    refused = api.post(f"/api/v1/recalls/{recall['id']}/close/", {}, format="json")
    assert (refused.status_code, refused.data["code"]) == (409, "RECALL_NOT_CLOSABLE")
    bad = api.post(f"/api/v1/recalls/{recall['id']}/scan/", {"action": "quarantine", "code": "x",
                                                             "idempotency_key": "k"}, format="json")
    assert bad.status_code == 400 and bad.data["problems"][0]["field"] == "to_location"

    for item in recall["items"]:
        if item["kind"] == "STOCK":
            done = api.post(f"/api/v1/recalls/{recall['id']}/scan/", {
                "action": "quarantine", "code": Unit.objects.get(pk=item["unit"]).udi_raw,
                "to_location": quarantine.pk, "idempotency_key": f"q{item['id']}"}, format="json")
            assert done.status_code == 200, done.data
        else:
            done = nurse.post(f"/api/v1/recalls/{recall['id']}/items/{item['id']}/follow-up/",
                              {"follow_up": "NOTIFIED", "note": "phoned"}, format="json")
            assert done.status_code == (200 if item["serial"] in {"RC5", "RC6"} else 404), done.data
    export = api.get(f"/api/v1/recalls/{recall['id']}/export.csv")
    body = b"".join(export.streaming_content) if export.streaming else export.content
    assert export["X-Content-SHA256"] == hashlib.sha256(body).hexdigest() == export["X-CSV-SHA256"]
    pdf = api.get(f"/api/v1/recalls/{recall['id']}/export.pdf")
    assert pdf.content.startswith(b"%PDF") and pdf["X-CSV-SHA256"] == export["X-CSV-SHA256"]

    closed = api.post(f"/api/v1/recalls/{recall['id']}/close/", {"note": "all quarantined"}, format="json")
    assert closed.status_code == 200 and closed.data["status"] == "CLOSED"
    again = api.post(f"/api/v1/recalls/{recall['id']}/close/", {}, format="json")
    assert (again.status_code, again.data["code"]) == (409, "RECALL_CLOSED")


def test_implant_records_list_and_export(operator, auditor, product, spread, ortho_store):  # noqa: F811
    api = api_client_for(auditor)
    listed = api.get("/api/v1/implants/", {"encounter": "ZY2"})
    assert listed.status_code == 200
    assert [(row["serial"], row["manufacturer"]) for row in listed.data["results"]] == [
        ("RC5", product.manufacturer.name)]
    csv_file = api.get("/api/v1/implants/export.csv")
    assert csv_file.status_code == 200
    text = csv_file.content.decode()
    assert all(serial in text for serial in ("RC1", "RC5", "RC6"))
    assert api.get("/api/v1/implants/export.xlsx").content[:2] == b"PK"
    assert api.get("/api/v1/implants/export.pdf", {"encounter": "ZY1"}).content.startswith(b"%PDF")
    assert api.get("/api/v1/implants/export.pdf").status_code == 400
    nurse = api_client_for(nurse_of(ortho_store.department))
    assert {row["encounter"] for row in nurse.get("/api/v1/implants/").data["results"]} == {"ZY2", "ZY3"}
