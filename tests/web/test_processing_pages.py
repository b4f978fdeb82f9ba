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
