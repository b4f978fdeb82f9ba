"""Acceptance over the API: units are scanned against the note before they can be accepted."""
import pytest

from inventory.models import Unit
from tests.conftest import api_client_for
from tests.factories import gs1_udi

pytestmark = pytest.mark.django_db


@pytest.fixture
def note(api, supplier, warehouse, product):
    lines = [{"udi": gs1_udi(product.udi_di, serial=s), "unit_price": "1200.00"} for s in ("P1", "P2")]
    body = {"supplier": supplier.pk, "number": "DN-API", "receiving_location": warehouse.pk, "lines": lines,
            "idempotency_key": "dn-api"}
    response = api.post("/api/v1/delivery-notes/", body, format="json")
    assert response.status_code == 201, response.data
    return response.data


def scan(api, note, code):
    return api.post(f"/api/v1/delivery-notes/{note['id']}/scan/", {"udi": code}, format="json")


def accept(api, note, key, **body):
    return api.post(f"/api/v1/delivery-notes/{note['id']}/accept/", {"idempotency_key": key, **body}, format="json")


def test_a_scan_verifies_its_line_and_a_stranger_code_is_404(api, note, keeper, product):
    scanned = scan(api, note, gs1_udi(product.udi_di, serial="P1"))
    assert scanned.status_code == 200
    assert (scanned.data["line_no"], scanned.data["scanned_by"]) == (1, keeper.pk)
    assert scanned.data["scanned_at"] is not None
    stranger = scan(api, note, gs1_udi(product.udi_di, serial="P9"))
    assert (stranger.status_code, stranger.data["code"]) == (404, "SCANNED_UNIT_NOT_ON_NOTE")


def test_unscanned_units_stay_open_and_the_answer_says_which(api, note, product):
    scan(api, note, gs1_udi(product.udi_di, serial="P1"))
    partly = accept(api, note, "acc-1")
    assert partly.status_code == 200, partly.data
    assert (partly.data["status"], partly.data["open_lines"]) == ("PARTLY_ACCEPTED", [2])
    assert partly.data["lines"][1]["acceptance"] is None
    assert list(Unit.objects.values_list("serial", flat=True)) == ["P1"]

    nothing = accept(api, note, "acc-2")
    assert (nothing.status_code, nothing.data["code"]) == (409, "LINES_NOT_SCANNED")


def test_only_an_operator_with_a_reason_accepts_without_scanning(api, note, operator):
    refused = accept(api, note, "acc-k", accept_unscanned=True, unscanned_reason="label torn")
    assert (refused.status_code, refused.data["code"]) == (403, "UNSCANNED_ACCEPT_NOT_AUTHORISED")
    operator_api = api_client_for(operator)
    no_reason = accept(operator_api, note, "acc-o1", accept_unscanned=True)
    assert (no_reason.status_code, no_reason.data["code"]) == (400, "UNSCANNED_REASON_MISSING")
    done = accept(operator_api, note, "acc-o2", accept_unscanned=True, unscanned_reason="label torn")
    assert (done.data["status"], done.data["open_lines"]) == ("ACCEPTED", [])
    assert [line["acceptance"]["accepted_without_scan"] for line in done.data["lines"]] == [True, True]
    assert done.data["lines"][0]["acceptance"]["without_scan_reason"] == "label torn"
