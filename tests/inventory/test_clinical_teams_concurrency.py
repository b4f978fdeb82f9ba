"""Clinical team memberships under concurrency on PostgreSQL: one doctor put into two teams of a
department at the same moment ends up in one of them (the department row is the lock)."""
import datetime

import pytest

from inventory.errors import Refused
from inventory.models import ClinicalTeam, ClinicalTeamMember
from inventory.services.clinical_teams import add_member
from tests import factories
from tests.concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_doctor_added_to_two_teams_of_a_department_at_once_is_in_one(hospital):
    department = factories.DepartmentFactory(hospital=hospital, code="CARD", name="心内科")
    teams = [ClinicalTeam.objects.create(hospital=hospital, department=department, code=f"C{n}", name=f"心内{n}组")
             for n in (1, 2)]
    for round_ in range(5):
        doctor = f"D{round_}"
        outcomes = run_together(2, lambda index, doctor=doctor: add_member(
            team=teams[index], doctor=doctor, since=datetime.date(2026, 1, 1)))
        refused = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
        assert len(refused) == 1 and refused[0].code == "TEAM_MEMBERSHIP_OVERLAPS", outcomes
        assert ClinicalTeamMember.objects.filter(doctor=doctor).count() == 1
