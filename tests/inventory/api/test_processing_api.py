"""Processing over the API: definitions, FEFO proposal, assembly, label PDF, use, break-up, bad input."""
import pytest

from inventory.models import Charge, LabelPrint, Movement, Pack, PackDefinition
from tests import factories
from tests.conftest import api_client_for
from tests.factories import gs1_udi
from tests.inventory.test_processing import (  # noqa: F401 (fixtures)
    EARLY,
    LATE,
    station,
    stocked_station,
)

pytestmark = pytest.mark.django_db


def define(api, lot_product, quantity=10, code="DB-SYR10"):
    return api.post("/api/v1/pack-definitions/", {
        "code": code, "name": "注射器定数包", "kind": "PACK",
        "lines": [{"product": lot_product.pk, "quantity": quantity}]}, format="json")


def test_define_propose_assemble_print_and_break_up(api, lot_product, stocked_station):  # noqa: F811
    definition = define(api, lot_product)
    assert definition.status_code == 201, definition.data
    assert definition.data["version"] == 1 and definition.data["pack_gtin"].startswith("029")
    pk = definition.data["id"]
    proposal = api.get(f"/api/v1/pack-definitions/{pk}/proposal/?station={stocked_station.pk}")
    assert proposal.status_code == 200
    assert [(pick["lot"], pick["quantity"]) for pick in proposal.data[0]["picks"]] == [("L-EARLY", 10)]

    wrong = api.post("/api/v1/packs/", {"definition": pk, "station": stocked_station.pk, "idempotency_key": "a1",
                                        "scans": [{"code": gs1_udi(lot_product.udi_di, lot="L-LATE", expiry=LATE),
                                                   "quantity": 10}]}, format="json")
    assert (wrong.status_code, wrong.data["code"]) == (409, "NOT_FEFO")
    made = api.post("/api/v1/packs/", {"definition": pk, "station": stocked_station.pk, "idempotency_key": "a2",
                                       "scans": [{"code": gs1_udi(lot_product.udi_di, lot="L-EARLY", expiry=EARLY),
                                                  "quantity": 10}]}, format="json")
    assert made.status_code == 201, made.data
    assert (made.data["cost"], made.data["expiry"], made.data["status"]) == ("35.00", EARLY.isoformat(), "IN_STOCK")
    assert made.data["members"][0]["lot"] == "L-EARLY"

    label = api.post("/api/v1/labels/", {"unit": made.data["unit"], "symbology": "GS1_128"}, format="json")
    assert label.status_code == 200 and label["Content-Type"] == "application/pdf"
    assert label.content.startswith(b"%PDF") and LabelPrint.objects.get().symbology == "GS1_128"

    broken = api.post(f"/api/v1/packs/{made.data['id']}/break/", {"idempotency_key": "b1"}, format="json")
    assert broken.status_code == 200, broken.data
    assert broken.data["status"] == "UNPACKED" and broken.data["members"][0]["state"] == "RETURNED"


@pytest.mark.parametrize(("lines", "code"), [
    ([{"quantity": 0}], "PACK_LINE_QUANTITY"),
    ([{"quantity": -1}], "PACK_LINE_QUANTITY"),
    ([], "PACK_DEFINITION_EMPTY"),
])
def test_bad_definitions_are_400_and_nothing_is_written(api, lot_product, lines, code):
    body = {"code": "BAD", "name": "坏", "kind": "KIT", "lines": [{"product": lot_product.pk, **line} for line in lines]}
    response = api.post("/api/v1/pack-definitions/", body, format="json")
    assert (response.status_code, response.data["code"]) == (400, code)
    assert not PackDefinition.objects.exists()


def test_a_kit_containing_itself_is_400(api, lot_product):
    first = define(api, lot_product, code="KIT-A")
    response = api.post("/api/v1/pack-definitions/", {
        "code": "KIT-A", "name": "A", "kind": "KIT", "lines": [{"product": first.data["pack_product"], "quantity": 1}]},
        format="json")
    assert (response.status_code, response.data["code"]) == (400, "PACK_DEFINITION_CYCLE")
    assert PackDefinition.objects.count() == 1


def test_too_few_members_is_400_too_many_409_and_nothing_is_written(api, lot_product, stocked_station):  # noqa: F811
    pk = define(api, lot_product).data["id"]
    movements = Movement.objects.count()
    for quantity, expected in ((4, (400, "PACK_MEMBERS_SHORT")), (12, (409, "PACK_MEMBERS_EXCESS"))):
        response = api.post("/api/v1/packs/", {
            "definition": pk, "station": stocked_station.pk, "idempotency_key": f"k{quantity}",
            "scans": [{"code": gs1_udi(lot_product.udi_di, lot="L-EARLY", expiry=EARLY), "quantity": quantity}]},
            format="json")
        assert (response.status_code, response.data["code"]) == expected
    assert Movement.objects.count() == movements and not Pack.objects.exists()


def test_a_nurse_uses_a_whole_pack_and_each_member_is_charged_once(
    api, hospital, keeper_actor, lot_product, stocked_station  # noqa: F811
):
    from inventory.services.stock import transfer_stock

    pk = define(api, lot_product).data["id"]
    made = api.post("/api/v1/packs/", {"definition": pk, "station": stocked_station.pk, "idempotency_key": "a",
                                       "scans": [{"code": gs1_udi(lot_product.udi_di, lot="L-EARLY", expiry=EARLY),
                                                  "quantity": 10}]}, format="json").data
    department = factories.DepartmentFactory(hospital=hospital, code="ICU", name="重症医学科")
    store = factories.LocationFactory(hospital=hospital, department=department, code="ICU-S", kind="DEPARTMENT_STORE")
    pack = Pack.objects.get(pk=made["id"])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=store, units=[pack.unit], idempotency_key="t")
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    nurse.departments.add(department)
    body = {"encounter": "ZY1", "department": department.pk, "idempotency_key": "u1"}
    used = api_client_for(nurse).post(f"/api/v1/packs/{pack.pk}/use/", body, format="json")
    assert used.status_code == 200, used.data
    again = api_client_for(nurse).post(f"/api/v1/packs/{pack.pk}/use/", body, format="json")
    assert again.status_code == 200
    charge = Charge.objects.get()
    assert (charge.quantity, str(charge.amount), charge.encounter) == (10, "35.00", "ZY1")


def test_another_hospitals_pack_is_404_and_its_station_a_400(api, other_hospital, lot_product):
    other_station = factories.LocationFactory(hospital=other_hospital, code="P2", kind="PROCESSING_STATION")
    pk = define(api, lot_product).data["id"]
    response = api.post("/api/v1/packs/", {"definition": pk, "station": other_station.pk, "idempotency_key": "x",
                                           "scans": []}, format="json")
    assert response.status_code == 400
    assert api.post("/api/v1/packs/999999/break/", {"idempotency_key": "y"}, format="json").status_code == 404


def test_a_label_needs_exactly_one_subject(api):
    response = api.post("/api/v1/labels/", {}, format="json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
