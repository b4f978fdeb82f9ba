"""Every path that records a use (Consumption) records its clinical team (诊疗组) by one rule
(`services.consumption.team_at_use`): the team named with the use (the hospital's own only), else the
team the doctor was in on the local day of the use, else none. Units over the API are pinned in
test_review_teams_and_reports.py; here lot uses over the API and packs (units and lot members). The
bedside page is in tests/web/test_clinical_teams_pages.py. Uses are not imported from the HIS (it
receives our charges and sends settlements): there is no import path of uses to give a team."""
import datetime

import pytest
from django.utils import timezone

from inventory.models import ClinicalTeam, ClinicalTeamMember, Consumption, Pack
from inventory.services.stock import LotQuantity, transfer_stock
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import gs1_udi
from tests.inventory.api.test_processing_api import define
from tests.inventory.test_processing import (  # noqa: F401 (fixtures)
    EARLY,
    receive_lot,
    station,
    stocked_station,
    unit_scan,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def department(cath_lab_store):
    return cath_lab_store.department


@pytest.fixture
def teams(hospital, department):
    """D7 in team one until the end of last month, in team two since; another department's team
    where D7 also is (a team of the ordering department comes first)."""
    one = ClinicalTeam.objects.create(hospital=hospital, department=department, code="T1", name="心内一组")
    two = ClinicalTeam.objects.create(hospital=hospital, department=department, code="T2", name="心内二组")
    elsewhere = ClinicalTeam.objects.create(
        hospital=hospital, department=factories.DepartmentFactory(hospital=hospital, code="ICU", name="重症医学科"),
        code="I1", name="重症一组")
    first_of_month = timezone.localdate().replace(day=1)
    ClinicalTeamMember.objects.create(team=one, doctor="D7", since=datetime.date(2020, 1, 1),
                                      until=first_of_month - datetime.timedelta(days=1))
    ClinicalTeamMember.objects.create(team=two, doctor="D7", since=first_of_month)
    ClinicalTeamMember.objects.create(team=elsewhere, doctor="D7", since=datetime.date(2020, 1, 1))
    return one, two


@pytest.fixture
def lot_in_store(keeper_actor, supplier, warehouse, lot_product, cath_lab_store):
    receive_lot(keeper_actor, supplier, warehouse, lot_product, "L-T", 30, EARLY)
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store,
                   lots=[LotQuantity(lot_product, "L-T", 30, warehouse)], idempotency_key="lot-to-store")
    return lot_product


def use_lot(client, department, product, key, **body):
    return client.post("/api/v1/consumptions/", {
        "product": product.pk, "lot": "L-T", "quantity": 2, "encounter": "ZY1", "department": department.pk,
        "idempotency_key": key, **body}, format="json")


def test_a_lot_use_is_recorded_under_the_named_team_or_the_doctors_team_of_the_day(
    keeper, other_hospital, department, teams, lot_in_store
):
    one, two = teams
    api = api_client_for(keeper)
    answers = [
        use_lot(api, department, lot_in_store, "l1", doctor="D7"),
        use_lot(api, department, lot_in_store, "l2", doctor="D7", clinical_team=one.pk),
        use_lot(api, department, lot_in_store, "l3", doctor="D99"),
        use_lot(api, department, lot_in_store, "l4"),
    ]
    assert [a.status_code for a in answers] == [201] * 4, [a.content for a in answers]
    assert [a.data["clinical_team"] for a in answers] == [two.pk, one.pk, None, None]

    theirs = ClinicalTeam.objects.create(hospital=other_hospital, code="X1", name="外院组",
                                         department=factories.DepartmentFactory(hospital=other_hospital))
    refused = use_lot(api, department, lot_in_store, "l5", doctor="D7", clinical_team=theirs.pk)
    assert refused.status_code == 400 and "clinical_team" in refused.data["problems"][0]["field"]
    assert Consumption.objects.count() == 4


def _pack_in(api, hospital, keeper_actor, lot_product, at_station, cath_lab_store, *, key):
    definition = define(api, lot_product, quantity=5, code=f"DB-{key}").data["id"]
    made = api.post("/api/v1/packs/", {"definition": definition, "station": at_station.pk, "idempotency_key": key,
                                       "scans": [{"code": gs1_udi(lot_product.udi_di, lot="L-EARLY", expiry=EARLY),
                                                  "quantity": 5}]}, format="json")
    assert made.status_code == 201, made.data
    pack = Pack.objects.get(pk=made.data["id"])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[pack.unit],
                   idempotency_key=f"to-store-{key}")
    return pack


def test_a_pack_used_on_a_patient_records_the_team_of_each_member(
    api, hospital, keeper, keeper_actor, supplier, warehouse, product, lot_product, stocked_station,  # noqa: F811
    cath_lab_store, department, teams,
):
    one, two = teams
    by_doctor = _pack_in(api, hospital, keeper_actor, lot_product, stocked_station, cath_lab_store, key="p1")
    named = _pack_in(api, hospital, keeper_actor, lot_product, stocked_station, cath_lab_store, key="p2")
    body = {"encounter": "ZY1", "department": department.pk, "doctor": "D7"}
    assert api.post(f"/api/v1/packs/{by_doctor.pk}/use/", {**body, "idempotency_key": "u1"},
                    format="json").status_code == 200
    assert api.post(f"/api/v1/packs/{named.pk}/use/", {**body, "idempotency_key": "u2", "clinical_team": one.pk},
                    format="json").status_code == 200
    teams_of = dict(Consumption.objects.values_list("encounter", "clinical_team").filter(
        pk__in=[m.consumption_id for m in by_doctor.members.all()]).distinct())
    assert teams_of == {"ZY1": two.pk}
    assert set(Consumption.objects.filter(pk__in=[m.consumption_id for m in named.members.all()])
               .values_list("clinical_team", flat=True)) == {one.pk}

    # a pack of a unit member (a kit with a high-value unit): the team is read with the unit's lock
    [unit] = stock_units(keeper_actor, supplier, warehouse, product, ["K-1"])
    kit = api.post("/api/v1/pack-definitions/", {"code": "KIT-1", "name": "介入包", "kind": "KIT",
                                                 "lines": [{"product": product.pk, "quantity": 1}]}, format="json")
    assert kit.status_code == 201, kit.data
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=stocked_station, units=[unit],
                   idempotency_key="unit-to-station")
    made = api.post("/api/v1/packs/", {"definition": kit.data["id"], "station": stocked_station.pk,
                                       "idempotency_key": "k1", "scans": [{"code": unit_scan(unit).code}]},
                    format="json")
    assert made.status_code == 201, made.data
    pack = Pack.objects.get(pk=made.data["id"])
    transfer_stock(actor=keeper_actor, hospital=hospital, to_location=cath_lab_store, units=[pack.unit],
                   idempotency_key="kit-to-store")
    assert api.post(f"/api/v1/packs/{pack.pk}/use/", {**body, "idempotency_key": "u3"},
                    format="json").status_code == 200
    assert Consumption.objects.get(unit=unit).clinical_team_id == two.pk
