"""Request shapes the API refused with English free text now have codes of their own, worded in the
caller's language (inventory/errors.py), in the problem that names what was wrong."""
import pytest

from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
SUMMARY = "/api/v1/settlements/"


def problem_of(response, code: str) -> dict:
    """The problem of that code (other fields may have problems of their own)."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "INVALID_REQUEST"
    [problem] = [problem for problem in body["problems"] if problem["code"] == code] or [body["problems"]]
    return problem


@pytest.mark.parametrize(("language", "words"), [("en", "Name one unit"), ("zh-hans", "请指定一件耗材")])
def test_a_use_naming_both_a_unit_and_a_lot(operator, product, cath_lab_store, language, words):
    client = api_client_for(operator)
    response = client.post("/api/v1/consumptions/", {
        "udi": "x", "product": product.pk, "lot": "L1", "encounter": "ZY1", "idempotency_key": "k",
        "department": cath_lab_store.department_id,
    }, format="json", HTTP_ACCEPT_LANGUAGE=language)
    assert problem_of(response, "USE_TARGET_INVALID")["detail"].startswith(words)


def test_a_settlement_period_given_twice_or_not_at_all_or_backwards(operator, supplier):
    client = api_client_for(operator)
    of = {"supplier": supplier.pk}
    twice = client.get(SUMMARY, {**of, "period": "2026-10", "period_start": "2026-10-01"})
    assert problem_of(twice, "PERIOD_GIVEN_TWICE")["field"] == ""
    assert problem_of(client.get(SUMMARY, {**of, "period_start": "2026-10-01"}), "PERIOD_MISSING")
    backwards = problem_of(client.get(SUMMARY, {**of, "period_start": "2026-10-02", "period_end": "2026-10-01"}),
                           "PERIOD_INVALID")
    assert backwards["field"] == "period_end"
    assert "2026-10-01" in backwards["detail"] and "2026-10-02" in backwards["detail"]


def test_reader_thresholds_of_a_device(operator):
    client = api_client_for(operator)
    for config, code in (({"suspect_missing_share": 1.5}, "SUSPECT_SHARE_INVALID"),
                         ({"suspect_min_units": 0}, "SUSPECT_MIN_UNITS_INVALID")):
        response = client.post("/api/v1/devices/", {"code": "CAB-X", "name": "x", "kind": "CABINET_HTTP",
                                                     "config": config}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
        problem = problem_of(response, code)
        assert problem["field"] == "config"
        assert "必须" in problem["detail"]


def test_a_delivery_line_naming_neither_a_unit_nor_a_lot(operator, supplier, warehouse):
    response = api_client_for(operator).post("/api/v1/delivery-notes/", {
        "supplier": supplier.pk, "number": "DN-1", "receiving_location": warehouse.pk, "idempotency_key": "k",
        "lines": [{"unit_price": "1.00"}],
    }, format="json")
    assert problem_of(response, "DELIVERY_LINE_TARGET_INVALID")["field"] == "lines[0]"
