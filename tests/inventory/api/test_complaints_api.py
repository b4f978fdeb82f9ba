"""Complaints and suspensions over the API: record (JSON and multipart), decide, the suspension that
follows and its 409 on ordering, lifting; roles and hospital scope."""
import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests import factories
from tests.conftest import api_client_for
from tests.factories import TODAY

pytestmark = pytest.mark.django_db


def body(**about):
    return {"received_on": str(TODAY), "complainant": "心内科", "subject": "包装破损", "evidence": "外包装破损", **about}


def order_body(supplier, product):
    return {
        "supplier": supplier.pk, "promised_date": str(TODAY + datetime.timedelta(days=2)),
        "lines": [{"product": product.pk, "quantity": 1, "platform_reference": "YG-1"}],
    }


def test_four_upheld_complaints_suspend_until_lifted(api, operator, supplier, product):
    boss = api_client_for(operator)
    for _ in range(4):
        created = api.post("/api/v1/complaints/", body(supplier=supplier.pk), format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["outcome"] == "PENDING"
        decided = boss.post(f"/api/v1/complaints/{created.json()['id']}/decide/",
                            {"outcome": "UPHELD", "reason": "属实"}, format="json")
        assert decided.status_code == 200 and decided.json()["outcome"] == "UPHELD"

    suspensions = api.get("/api/v1/suspensions/", {"active": "true"}).json()["results"]
    assert [(s["supplier"], s["is_active"], len(s["complaints"])) for s in suspensions] == [(supplier.pk, True, 4)]
    refused = api.post("/api/v1/purchase-orders/", order_body(supplier, product), format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "SUPPLIER_SUSPENDED"
    assert supplier.name in refused.json()["detail"]

    assert api.post(f"/api/v1/suspensions/{suspensions[0]['id']}/lift/", {"reason": "x"},
                    format="json").status_code == 403  # a keeper does not lift
    assert boss.post(f"/api/v1/suspensions/{suspensions[0]['id']}/lift/", {}, format="json").status_code == 400
    lifted = boss.post(f"/api/v1/suspensions/{suspensions[0]['id']}/lift/", {"reason": "整改完成"}, format="json")
    assert lifted.status_code == 200 and (lifted.json()["is_active"], lifted.json()["lift_reason"]) == (False, "整改完成")
    assert boss.post(f"/api/v1/suspensions/{suspensions[0]['id']}/lift/", {"reason": "again"},
                     format="json").status_code == 409
    assert api.post("/api/v1/purchase-orders/", order_body(supplier, product), format="json").status_code == 201


def test_bad_input_and_state(api, operator, supplier, product, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    missing = api.post("/api/v1/complaints/", body(), format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "COMPLAINT_SUBJECT_MISSING"
    assert api.post("/api/v1/complaints/", {"supplier": supplier.pk}, format="json").status_code == 400
    scan = SimpleUploadedFile("scan.png", b"\x89PNG\r\n\x1a\n....")
    uploaded = api.post("/api/v1/complaints/", {**body(product=product.pk), "evidence_file": scan}, format="multipart")
    assert uploaded.status_code == 201, uploaded.json()
    assert uploaded.json()["evidence_file"].endswith(".png")
    complaint = uploaded.json()["id"]
    assert api.post(f"/api/v1/complaints/{complaint}/decide/", {"outcome": "UPHELD", "reason": "x"},
                    format="json").status_code == 403
    boss = api_client_for(operator)
    assert boss.post(f"/api/v1/complaints/{complaint}/decide/", {"outcome": "PENDING", "reason": "x"},
                     format="json").status_code == 400
    assert boss.post(f"/api/v1/complaints/{complaint}/decide/", {"outcome": "DISMISSED", "reason": "x"},
                     format="json").status_code == 200
    again = boss.post(f"/api/v1/complaints/{complaint}/decide/", {"outcome": "UPHELD", "reason": "x"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "COMPLAINT_ALREADY_DECIDED"


def test_other_hospitals_complaints_do_not_exist(api, supplier, other_hospital):
    other_product = factories.ProductFactory(hospital=other_hospital)
    foreign = api.post("/api/v1/complaints/", body(product=other_product.pk), format="json")
    assert foreign.status_code == 400  # not a product of the caller's hospital
    stranger = factories.UserFactory(username="op2", hospital=other_hospital, roles=["spd_operator"])
    theirs = api_client_for(stranger).post("/api/v1/complaints/", body(supplier=supplier.pk), format="json").json()
    assert api.get(f"/api/v1/complaints/{theirs['id']}/").status_code == 404
    assert api.get("/api/v1/complaints/").json()["results"] == []
    assert api.post(f"/api/v1/complaints/{theirs['id']}/decide/", {"outcome": "UPHELD", "reason": "x"},
                    format="json").status_code == 404
