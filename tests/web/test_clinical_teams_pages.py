"""The clinical team (诊疗组) pages without a browser: create, edit, a doctor joins and leaves, an
overlapping membership refused with its reason; who may see and change what; and the bedside page
recording a use under the doctor's team of the day."""
import datetime
import re

import pytest
from django.urls import reverse

from inventory.models import ClinicalTeam, ClinicalTeamMember, Consumption, LotBalance
from tests import factories
from tests.factories import gs1_udi
from tests.web.test_operations_pages import bedside_page, context_of, in_department, use_scan  # noqa: F401 (fixture)
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def department(world):
    return world.cabinet.department


def test_an_operator_creates_a_team_and_keeps_its_members(world, department):
    operator = client_for(world.operator)
    created = operator.post(reverse("web:clinical-teams"), {"department": department.pk, "code": "T1",
                                                            "name": "导管一组"})
    team = ClinicalTeam.objects.get(code="T1")
    assert created.status_code == 302 and created["Location"] == reverse("web:clinical-team", args=[team.pk])
    page = reverse("web:clinical-team", args=[team.pk])
    assert operator.post(page, {"doctor": "D0042", "since": "2026-01-01", "until": ""}).status_code == 302
    second = ClinicalTeam.objects.create(hospital=team.hospital, department=department, code="T2", name="导管二组")
    refused = operator.post(reverse("web:clinical-team", args=[second.pk]), {"doctor": "D0042", "since": "2026-05-01"})
    assert refused.status_code == 409
    assert 'data-code="TEAM_MEMBERSHIP_OVERLAPS"' in text(refused) and "导管一组" in text(refused)

    member = ClinicalTeamMember.objects.get(team=team)
    assert operator.post(page, {"end": member.pk, "until": "2026-04-30"}).status_code == 302
    assert operator.post(reverse("web:clinical-team", args=[second.pk]),
                         {"doctor": "D0042", "since": "2026-05-01"}).status_code == 302
    renamed = operator.post(page, {"department": department.pk, "code": "T1", "name": "导管甲组"})
    assert renamed.status_code == 302
    shown = text(operator.get(page))
    assert "导管甲组" in shown and "2026-04-30" in shown
    listing = text(operator.get(reverse("web:clinical-teams")))
    assert "导管甲组" in listing and "导管二组" in listing
    assert list(ClinicalTeamMember.objects.order_by("team__code").values_list("team__code", "until")) == [
        ("T1", datetime.date(2026, 4, 30)), ("T2", None)]


def test_nurses_see_their_departments_teams_and_change_nothing(world, department, other_hospital):
    hospital = world.warehouse.hospital
    mine = ClinicalTeam.objects.create(hospital=hospital, department=department, code="T1", name="导管一组")
    other = ClinicalTeam.objects.create(hospital=hospital, code="O1", name="骨科一组",
                                        department=factories.DepartmentFactory(hospital=hospital, code="ORTH"))
    foreign = ClinicalTeam.objects.create(hospital=other_hospital, code="X1", name="外院组",
                                          department=factories.DepartmentFactory(hospital=other_hospital))
    nurse = client_for(world.nurse)
    listing = text(nurse.get(reverse("web:clinical-teams")))
    assert "导管一组" in listing and "骨科一组" not in listing and 'data-form="new-team"' not in listing
    assert nurse.get(reverse("web:clinical-team", args=[other.pk])).status_code == 404
    assert nurse.post(reverse("web:clinical-team", args=[mine.pk]),
                      {"doctor": "D1", "since": "2026-01-01"}).status_code == 403
    assert client_for(world.operator).get(reverse("web:clinical-team", args=[foreign.pk])).status_code == 404
    reviewer = factories.UserFactory(username="reviewer", hospital=hospital, roles=["reviewer"])
    assert "骨科一组" in text(client_for(reviewer).get(reverse("web:clinical-teams")))
    assert not ClinicalTeamMember.objects.exists()


def test_a_use_at_the_bedside_is_recorded_under_the_doctors_team_of_the_day(world, in_department):  # noqa: F811
    team = ClinicalTeam.objects.create(hospital=world.warehouse.hospital, department=in_department.department,
                                       code="T1", name="导管一组")
    ClinicalTeamMember.objects.create(team=team, doctor="D0042", since=datetime.date(2020, 1, 1))
    nurse = client_for(world.nurse)
    token = re.search(r'name="idempotency_key" value="(web-use-[^"]+)"', text(bedside_page(nurse, world))).group(1)
    answer = use_scan(nurse, world, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"), token)
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert Consumption.objects.get(pk=answer.json()["consumption"]).clinical_team_id == team.pk
    # a lot used from the bedside page: the doctor's team too; a doctor in no team, none (未分组)
    balance = LotBalance.objects.get(location=in_department, lot="L-2026")
    for key, doctor in (("web-use-lot-a", "D0042"), ("web-use-lot-b", "D0099")):
        used = nurse.post(reverse("web:bedside-lot"), {**context_of(world), "doctor": doctor, "balance": balance.pk,
                                                       "quantity": "1", "idempotency_key": key})
        assert used.status_code == 302
    assert dict(Consumption.objects.filter(lot="L-2026").values_list("doctor", "clinical_team")) == {
        "D0042": team.pk, "D0099": None}
