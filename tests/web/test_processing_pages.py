"""The processing pages through Django's test client: who may open them, the station's scanned list
without JavaScript, break-up from the pack page, and a set component's trace naming its partner."""
import pytest
from django.test import Client

from inventory.models import Pack
from tests import factories
from tests.factories import gs1_udi
from tests.inventory.test_processing import (  # noqa: F401 (fixtures)
    EARLY,
    iol_set,
    station,
    stocked_station,
    syringe_pack,
    ward,
)

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_nurse_may_not_open_the_station(hospital):
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    assert signed_in(nurse).get("/processing/").status_code == 403


def test_scan_into_the_list_assemble_and_break_up_without_javascript(
    keeper, syringe_pack, stocked_station, lot_product  # noqa: F811
):
    client = signed_in(keeper)
    page = client.get(f"/processing/?definition={syringe_pack.pk}&station={stocked_station.pk}")
    assert page.status_code == 200 and "L-EARLY" in page.content.decode()
    key = page.context["key"]
    form = {"definition": syringe_pack.pk, "station": stocked_station.pk, "idempotency_key": key}
    code = gs1_udi(lot_product.udi_di, lot="L-EARLY", expiry=EARLY)
    added = client.post("/processing/", {**form, "code": code, "quantity": "10", "step": "add"})
    assert added.context["rows"] == [(code.replace("\x1d", "\u241d"), 10)]
    made = client.post("/processing/", {**form, "scan_code": [code], "scan_quantity": ["10"], "step": "assemble"})
    pack = Pack.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/processing/packs/{pack.pk}/"
    again = client.post("/processing/", {**form, "scan_code": [code], "scan_quantity": ["10"], "step": "assemble"})
    assert again.status_code == 302 and Pack.objects.count() == 1  # a double submit replays
    shown = client.get(f"/processing/packs/{pack.pk}/")
    assert "L-EARLY" in shown.content.decode()
    client.post(f"/processing/packs/{pack.pk}/break/", {"idempotency_key": shown.context["key"]})
    pack.unit.refresh_from_db()
    assert pack.unit.status == "UNPACKED"


def test_a_set_components_trace_names_its_partner(keeper, iol_set):  # noqa: F811
    lens = iol_set.members.get(unit__serial="IOL1").unit
    page = signed_in(keeper).get(f"/units/{lens.pk}/")
    assert 'data-set-partner="INJ1"' in page.content.decode()


def test_another_hospitals_pack_is_404(keeper, other_hospital, syringe_pack, stocked_station, lot_product):  # noqa: F811
    foreign_keeper = factories.UserFactory(hospital=other_hospital, roles=["warehouse"])
    from inventory.actors import Actor
    from inventory.services.processing import MemberScan, assemble_pack

    pack = assemble_pack(actor=Actor(user=keeper), hospital=keeper.hospital, definition=syringe_pack,
                         station=stocked_station, idempotency_key="k",
                         scans=[MemberScan(gs1_udi(lot_product.udi_di, lot="L-EARLY", expiry=EARLY), 10)])
    assert signed_in(foreign_keeper).get(f"/processing/packs/{pack.pk}/").status_code == 404


def definition_form(code, rows, *, name="定数包", kind="PACK"):
    return {"code": code, "name": name, "kind": kind,
            "line_product": [str(product.pk) for product, _, _ in rows],
            "line_quantity": [str(quantity) for _, quantity, _ in rows],
            "line_optional": [str(index) for index, (_, _, optional) in enumerate(rows) if optional]}


def test_write_a_definition_then_a_new_version_from_the_page(keeper, lot_product, product):
    from inventory.models import PackDefinition

    client = signed_in(keeper)
    assert client.get("/processing/definitions/").status_code == 200
    made = client.post("/processing/definitions/", definition_form(
        "KIT-A", [(lot_product, 10, False), (product, 1, True)], kind="KIT"))
    assert made.status_code == 302
    first = PackDefinition.objects.get(code="KIT-A")
    assert (first.version, first.kind) == (1, "KIT")
    assert sorted(first.lines.values_list("product_id", "quantity", "is_optional")) == sorted(
        [(lot_product.pk, 10, False), (product.pk, 1, True)])
    prefilled = client.get(f"/processing/definitions/?from={first.pk}")
    assert prefilled.context["form"]["code"] == "KIT-A" and len(prefilled.context["form"]["rows"]) == 2
    client.post("/processing/definitions/", definition_form("KIT-A", [(lot_product, 5, False)], kind="KIT"))
    versions = list(PackDefinition.objects.filter(code="KIT-A").order_by("version")
                    .values_list("version", "is_current"))
    assert versions == [(1, False), (2, True)]
    listing = client.get("/processing/definitions/").content.decode()
    assert 'data-definition="KIT-A"' in listing and 'data-version="1"' in listing and 'data-version="2"' in listing


@pytest.mark.parametrize(("quantity", "code"), [("0", "PACK_LINE_QUANTITY"), ("-2", "PACK_LINE_QUANTITY"),
                                                ("two", "PACK_LINE_QUANTITY")])
def test_a_bad_quantity_is_shown_and_nothing_is_written(keeper, lot_product, quantity, code):
    from inventory.models import PackDefinition

    answer = signed_in(keeper).post("/processing/definitions/", definition_form("BAD", [(lot_product, quantity, False)]))
    assert answer.status_code == 400
    assert code in [problem.code for problem in answer.context["problems"]]
    assert 'role="alert"' in answer.content.decode() and not PackDefinition.objects.exists()
    assert answer.context["form"]["code"] == "BAD"  # the form is kept


def test_a_product_twice_and_a_cycle_are_shown(keeper, lot_product, syringe_pack):  # noqa: F811
    from inventory.models import PackDefinition

    client = signed_in(keeper)
    twice = client.post("/processing/definitions/", definition_form("TWICE", [(lot_product, 1, False),
                                                                              (lot_product, 2, False)]))
    assert twice.status_code == 400 and [p.code for p in twice.context["problems"]] == ["PACK_LINE_TWICE"]
    kit = client.post("/processing/definitions/", definition_form("KIT-B", [(syringe_pack.pack_product, 1, False)],
                                                                  kind="KIT"))
    assert kit.status_code == 302
    kit_product = PackDefinition.objects.get(code="KIT-B").pack_product
    cycle = client.post("/processing/definitions/", definition_form("DB-SYR10", [(lot_product, 10, False),
                                                                                 (kit_product, 1, False)]))
    assert cycle.status_code == 400 and [p.code for p in cycle.context["problems"]] == ["PACK_DEFINITION_CYCLE"]
    assert PackDefinition.objects.filter(code="DB-SYR10").count() == 1


def test_a_nurse_may_not_write_definitions(hospital):
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    assert signed_in(nurse).get("/processing/definitions/").status_code == 403


def test_scanning_a_packs_label_at_the_bedside_uses_the_ticked_members(hospital, iol_set, ward):  # noqa: F811
    from inventory.models import Consumption

    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    nurse.departments.add(ward.department)
    client = signed_in(nurse)
    query = f"encounter=ZY2026077&department={ward.department.pk}"
    use_page = client.get(f"/use/?{query}")
    context = {"encounter": "ZY2026077", "department": ward.department.pk, "query": query,
               "idempotency_key": use_page.context["token"]}
    pack_unit = iol_set.unit
    scanned = client.post("/use/scan/", {**context, "code": pack_unit.udi})
    assert scanned.status_code == 302 and scanned["Location"] == f"/use/pack/{iol_set.pk}/?{query}"
    page = client.get(scanned["Location"])
    assert 'data-member=' in page.content.decode() and not page.context["problems"]
    lens = iol_set.members.get(unit__serial="IOL1")
    form = {**context, "idempotency_key": page.context["key"], "member": [str(lens.pk)], "step": "chosen"}
    used = client.post(f"/use/pack/{iol_set.pk}/", form)
    assert used.status_code == 302
    assert list(Consumption.objects.values_list("unit__serial", "encounter")) == [("IOL1", "ZY2026077")]
    assert dict(iol_set.members.values_list("unit__serial", "state")) == {"IOL1": "USED", "INJ1": "LIVE"}


def test_a_pack_with_an_expired_member_is_shown_locked_at_the_bedside(hospital, iol_set, ward):  # noqa: F811
    import datetime

    from django.utils import timezone

    from inventory.models import Consumption, PackMember

    PackMember.objects.filter(pack=iol_set, unit__serial="IOL1").update(
        expiry=timezone.localdate() - datetime.timedelta(days=1))
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    nurse.departments.add(ward.department)
    client = signed_in(nurse)
    query = f"encounter=ZY2026078&department={ward.department.pk}"
    page = client.get(f"/use/pack/{iol_set.pk}/?{query}")
    assert [p.code for p in page.context["problems"]] == ["PACK_MEMBER_EXPIRED"]
    refused = client.post(f"/use/pack/{iol_set.pk}/", {
        "encounter": "ZY2026078", "department": ward.department.pk, "query": query, "step": "all",
        "idempotency_key": page.context["key"]})
    assert refused.status_code == 409 and "IOL1" in refused.content.decode()
    assert not Consumption.objects.exists()


def test_a_nurse_of_another_department_cannot_open_the_pack(hospital, iol_set, ward):  # noqa: F811
    nurse = factories.UserFactory(hospital=hospital, roles=["nurse"])
    other = factories.DepartmentFactory(hospital=hospital, code="ICU", name="ICU")
    nurse.departments.add(other)
    page = signed_in(nurse).get(f"/use/pack/{iol_set.pk}/?encounter=ZY1&department={other.pk}")
    assert page.status_code == 404
