"""No free text typed about stock or patients' care stores a personal identity number: stock-order
notes and reasons, alert notes, tag unbinding reasons (the clinical fields: test_consumption)."""
import pytest

from inventory.models import Alert, Movement, StockOrder
from inventory.services import alerts as alert_service
from inventory.services.labelling import bind_tag
from tests.conftest import stock_units

pytestmark = pytest.mark.django_db
IDENTITY = "110105199003071239"


@pytest.fixture
def unit(keeper_actor, supplier, warehouse, product):
    return stock_units(keeper_actor, supplier, warehouse, product, ["F1"])[0]


def test_a_transfer_note_or_a_scrap_reason_holding_an_identity_number_is_refused(api, unit, cath_lab_store):
    moves = Movement.objects.count()
    transfer = api.post("/api/v1/transfers/", {"units": [unit.pk], "to_location": cath_lab_store.pk,
                                              "note": f"给患者 {IDENTITY}", "idempotency_key": "t"}, format="json")
    scrap = api.post("/api/v1/scraps/", {"units": [unit.pk], "reason_code": IDENTITY, "idempotency_key": "s"},
                     format="json")

    for response in (transfer, scrap):
        assert (response.status_code, response.json()["code"]) == (400, "LOOKS_LIKE_PERSONAL_ID")
    assert Movement.objects.count() == moves and not StockOrder.objects.exists()


def test_an_alert_note_holding_an_identity_number_is_refused(api, hospital, unit, warehouse):
    alert = alert_service.raise_alert(hospital=hospital, kind=Alert.Kind.NEAR_EXPIRY, subject_key="unit:x",
                                      severity=Alert.Severity.INFO, message="90", unit=unit, location=warehouse)

    for action in ("acknowledge", "resolve"):
        response = api.post(f"/api/v1/alerts/{alert.pk}/{action}/", {"note": f"患者{IDENTITY}"}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "LOOKS_LIKE_PERSONAL_ID")
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN


def test_an_unbinding_reason_holding_an_identity_number_is_refused(api, unit, keeper_actor):
    bind_tag(unit=unit, epc="3034257BF400B7800000ABCD", actor=keeper_actor)

    response = api.post(f"/api/v1/units/{unit.pk}/unbind-tag/", {"reason": IDENTITY}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "LOOKS_LIKE_PERSONAL_ID")
    unit.refresh_from_db()
    assert unit.epc == "3034257BF400B7800000ABCD"
