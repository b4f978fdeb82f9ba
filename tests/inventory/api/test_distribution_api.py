"""Pick lists, dispatch and receipt over the API (inventory/api/distribution.py): shapes, scopes, refusals."""
import pytest

from inventory.models import Delivery, Movement, PickedItem, PickList
from tests import factories
from tests.conftest import api_client_for
from tests.inventory.api.test_bad_input import assert_error
from tests.inventory.test_picking import days, lot_code, requisition_for, stock  # noqa: F401 (fixture)

API = "/api/v1"
pytestmark = pytest.mark.django_db


@pytest.fixture
def requisition(nurse, department, lot_product, stock):  # noqa: F811
    return requisition_for(nurse, department, (lot_product, 5))


def create(api, warehouse, requisition, key="pl-1"):
    return api.post(f"{API}/pick-lists/", {
        "source_location": warehouse.pk, "requisition_lines": [line.pk for line in requisition.lines.all()],
        "idempotency_key": key,
    }, format="json")


def test_the_loop_over_the_api_with_a_fefo_split_and_pdfs(api, nurse, warehouse, requisition, lot_product):
    response = create(api, warehouse, requisition)
    assert response.status_code == 201, response.content
    body = response.json()
    assert [(p["lot"], p["quantity"]) for p in body["lines"][0]["proposed"]] == [("EARLY", 3), ("LATE", 2)]
    pick_list = body["id"]
    for code in (lot_code(lot_product, "EARLY", days(200)), lot_code(lot_product, "LATE", days(600))):
        scanned = api.post(f"{API}/pick-lists/{pick_list}/scan/", {"code": code}, format="json")
        assert scanned.status_code == 201, scanned.content
    pdf = api.get(f"{API}/pick-lists/{pick_list}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    sent = api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {"idempotency_key": "d-1"}, format="json")
    assert sent.status_code == 200 and sent.json()["status"] == "DISPATCHED"
    delivery = sent.json()["deliveries"][0]
    as_nurse = api_client_for(nurse)
    assert [d["id"] for d in as_nurse.get(f"{API}/deliveries/").json()["results"]] == [delivery]
    received = as_nurse.post(f"{API}/deliveries/{delivery}/receive/", {"idempotency_key": "r-1"}, format="json")
    assert received.status_code == 200 and received.json()["status"] == "RECEIVED"
    slip = as_nurse.get(f"{API}/deliveries/{delivery}/pdf/")
    assert slip.status_code == 200 and slip.content.startswith(b"%PDF")


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "x"])
def test_a_bad_scan_quantity_is_a_400_naming_the_field_and_records_nothing(api, warehouse, requisition, lot_product, quantity):
    pick_list = create(api, warehouse, requisition).json()["id"]
    response = api.post(f"{API}/pick-lists/{pick_list}/scan/",
                        {"code": lot_code(lot_product, "EARLY", days(200)), "quantity": quantity}, format="json")
    body = assert_error(response, 400, "INVALID_REQUEST")
    assert body["problems"][0]["field"] == "quantity"
    assert not PickedItem.objects.exists()


def test_a_later_lot_than_proposed_is_a_409(api, warehouse, requisition, lot_product):
    pick_list = create(api, warehouse, requisition).json()["id"]
    response = api.post(f"{API}/pick-lists/{pick_list}/scan/",
                        {"code": lot_code(lot_product, "LATE", days(600)), "quantity": 5}, format="json")
    assert_error(response, 409, "PICK_SCAN_NOT_FEFO")


def test_dispatching_twice_is_a_409_and_the_same_key_replays(api, warehouse, requisition, lot_product):
    pick_list = create(api, warehouse, requisition).json()["id"]
    api.post(f"{API}/pick-lists/{pick_list}/scan/", {"code": lot_code(lot_product, "EARLY", days(200))}, format="json")
    assert api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {"idempotency_key": "d-1"}, format="json").status_code == 200
    movements = Movement.objects.count()
    assert api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {"idempotency_key": "d-1"}, format="json").status_code == 200
    assert_error(api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {"idempotency_key": "d-2"}, format="json"),
                 409, "PICK_LIST_STATE")
    assert Movement.objects.count() == movements and Delivery.objects.count() == 1


def test_dispatch_without_a_key_is_a_400(api, warehouse, requisition):
    pick_list = create(api, warehouse, requisition).json()["id"]
    assert_error(api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {}, format="json"), 400, "IDEMPOTENCY_KEY_MISSING")


def test_a_requisition_line_on_an_open_pick_list_is_a_409(api, warehouse, requisition):
    create(api, warehouse, requisition)
    assert_error(create(api, warehouse, requisition, key="pl-2"), 409, "PICK_LINE_ON_ANOTHER_LIST")
    assert PickList.objects.count() == 1


@pytest.mark.parametrize("received", [-1, 1.5, 99])
def test_a_bad_received_quantity_is_a_400_naming_the_field(api, nurse, warehouse, requisition, lot_product, received):
    pick_list = create(api, warehouse, requisition).json()["id"]
    api.post(f"{API}/pick-lists/{pick_list}/scan/", {"code": lot_code(lot_product, "EARLY", days(200))}, format="json")
    delivery = api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {"idempotency_key": "d"}, format="json").json()["deliveries"][0]
    item = Delivery.objects.get(pk=delivery).items.get().pk
    response = api_client_for(nurse).post(f"{API}/deliveries/{delivery}/receive/", {
        "idempotency_key": "r", "items": [{"item": item, "received": received, "discrepancy": "SHORT",
                                           "action": "WRITTEN_OFF", "reason": "x"}],
    }, format="json")
    body = response.json()
    assert response.status_code == 400 and "received" in body["problems"][0]["field"]
    assert Delivery.objects.get(pk=delivery).status == "IN_TRANSIT"


def test_nurses_do_not_pick_and_see_no_other_departments_deliveries(api, nurse, hospital, warehouse, requisition, lot_product):
    as_nurse = api_client_for(nurse)
    assert as_nurse.post(f"{API}/pick-lists/", {}, format="json").status_code == 403
    assert as_nurse.get(f"{API}/pick-lists/").status_code == 403
    pick_list = create(api, warehouse, requisition).json()["id"]
    api.post(f"{API}/pick-lists/{pick_list}/scan/", {"code": lot_code(lot_product, "EARLY", days(200))}, format="json")
    delivery = api.post(f"{API}/pick-lists/{pick_list}/dispatch/", {"idempotency_key": "d"}, format="json").json()["deliveries"][0]
    stranger = factories.UserFactory(username="nurse2", hospital=hospital, roles=["nurse"])
    stranger.departments.add(factories.DepartmentFactory(hospital=hospital, code="ICU"))
    as_stranger = api_client_for(stranger)
    assert as_stranger.get(f"{API}/deliveries/").json()["results"] == []
    assert_error(as_stranger.post(f"{API}/deliveries/{delivery}/receive/", {"idempotency_key": "r"}, format="json"),
                 404, "NOT_FOUND")


def test_another_hospitals_pick_list_is_not_found(api, other_hospital, warehouse, requisition):
    pick_list = create(api, warehouse, requisition).json()["id"]
    outsider = factories.UserFactory(username="keeper2", hospital=other_hospital, roles=["warehouse"])
    assert_error(api_client_for(outsider).get(f"{API}/pick-lists/{pick_list}/"), 404, "NOT_FOUND")
