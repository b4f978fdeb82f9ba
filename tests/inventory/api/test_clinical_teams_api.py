"""Clinical teams (诊疗组) over the API: teams of the caller's hospital with dated memberships, kept by
administrators and SPD operators, read by the reviewer, auditors and (their departments') nurses;
a doctor is in one team of a department on a day (docs/review.md)."""
import datetime

import pytest

from inventory.models import ClinicalTeam, ClinicalTeamMember
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
TEAMS = "/api/v1/clinical-teams/"


@pytest.fixture
def cardio(hospital):
    return factories.DepartmentFactory(hospital=hospital, code="CARD", name="心内科")


@pytest.fixture
def ortho(hospital):
    return factories.DepartmentFactory(hospital=hospital, code="ORTH", name="骨科")


@pytest.fixture
def admin(hospital):
    return factories.UserFactory(username="admin-h1", hospital=hospital, roles=["admin"])


@pytest.fixture
def team_one(hospital, cardio):
    return ClinicalTeam.objects.create(hospital=hospital, department=cardio, code="C1", name="心内一组")


@pytest.fixture
def foreign_team(other_hospital):
    department = factories.DepartmentFactory(hospital=other_hospital, code="CARD", name="心内科")
    return ClinicalTeam.objects.create(hospital=other_hospital, department=department, code="X1", name="外院组")


def join(client, team, doctor, since, until=None):
    body = {"doctor": doctor, "since": since.isoformat()}
    if until is not None:
        body["until"] = until.isoformat()
    return client.post(f"{TEAMS}{team.pk}/members/", body, format="json")


def test_an_operator_creates_a_team_edits_it_and_keeps_dated_memberships(operator, hospital, cardio, ortho):
    client = api_client_for(operator)
    created = client.post(TEAMS, {"department": cardio.pk, "code": "C2", "name": "心内二组"}, format="json")
    assert created.status_code == 201, created.content
    team = created.json()
    assert (team["hospital"], team["department"], team["code"], team["members"]) == (hospital.pk, cardio.pk, "C2", [])

    joined = join(client, ClinicalTeam.objects.get(pk=team["id"]), "D7", datetime.date(2026, 1, 1))
    assert joined.status_code == 201
    [member] = joined.json()["members"]
    assert (member["doctor"], member["since"], member["until"]) == ("D7", "2026-01-01", None)

    ended = client.post(f"{TEAMS}{team['id']}/members/{member['id']}/end/", {"until": "2026-06-30"}, format="json")
    assert ended.status_code == 200 and ended.json()["members"][0]["until"] == "2026-06-30"
    again = client.post(f"{TEAMS}{team['id']}/members/{member['id']}/end/", {"until": "2026-07-31"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "TEAM_MEMBERSHIP_ENDED"

    changed = client.patch(f"{TEAMS}{team['id']}/", {"name": "骨科二组", "department": ortho.pk, "is_active": False},
                           format="json")
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["department"], changed.json()["is_active"]) == (
        "骨科二组", ortho.pk, False)
    listed = client.get(TEAMS, {"department": ortho.pk}).json()
    assert [row["code"] for row in listed["results"]] == ["C2"]


def test_a_doctor_is_in_one_team_of_a_department_on_a_day(operator, hospital, cardio, ortho, team_one):
    client = api_client_for(operator)
    two = ClinicalTeam.objects.create(hospital=hospital, department=cardio, code="C2", name="心内二组")
    bones = ClinicalTeam.objects.create(hospital=hospital, department=ortho, code="O1", name="骨科一组")
    assert join(client, team_one, "D7", datetime.date(2026, 1, 1), datetime.date(2026, 3, 31)).status_code == 201

    overlapping = join(client, two, "D7", datetime.date(2026, 3, 31), None)
    assert overlapping.status_code == 409
    body = overlapping.json()
    assert body["code"] == "TEAM_MEMBERSHIP_OVERLAPS"
    assert "心内一组" in body["detail"] and "2026-01-01" in body["detail"] and "2026-03-31" in body["detail"]
    # the same team twice over the same days is refused the same way
    assert join(client, team_one, "D7", datetime.date(2026, 2, 1)).json()["code"] == "TEAM_MEMBERSHIP_OVERLAPS"
    # the day after is free; another department's team is free on the same days
    assert join(client, two, "D7", datetime.date(2026, 4, 1)).status_code == 201
    assert join(client, bones, "D7", datetime.date(2026, 1, 1)).status_code == 201
    # an open membership blocks every later day, and moving a team into a department where its doctor
    # already is on those days is refused too
    assert join(client, team_one, "D7", datetime.date(2030, 1, 1)).json()["code"] == "TEAM_MEMBERSHIP_OVERLAPS"
    moved = client.patch(f"{TEAMS}{bones.pk}/", {"department": cardio.pk}, format="json")
    assert moved.status_code == 409 and moved.json()["code"] == "TEAM_MEMBERSHIP_OVERLAPS"
    assert ClinicalTeam.objects.get(pk=bones.pk).department_id == ortho.pk
    assert ClinicalTeamMember.objects.filter(doctor="D7").count() == 3


def test_bad_memberships_and_teams_are_refused_with_a_reason_and_change_nothing(
    operator, other_hospital, team_one, cardio
):
    client = api_client_for(operator, )
    backwards = join(client, team_one, "D7", datetime.date(2026, 5, 1), datetime.date(2026, 4, 30))
    assert backwards.status_code == 400 and backwards.json()["code"] == "TEAM_MEMBERSHIP_DATES"
    assert join(client, team_one, "  ", datetime.date(2026, 5, 1)).status_code == 400
    identity = join(client, team_one, "110101199003077777", datetime.date(2026, 5, 1))
    assert identity.status_code == 400 and identity.json()["problems"][0]["code"] == "LOOKS_LIKE_PERSONAL_ID"
    taken = client.post(TEAMS, {"department": cardio.pk, "code": "C1", "name": "又一组"}, format="json")
    assert taken.status_code == 409 and taken.json()["code"] == "CLINICAL_TEAM_CODE_TAKEN"
    foreign_department = factories.DepartmentFactory(hospital=other_hospital, code="ORTH")
    elsewhere = client.post(TEAMS, {"department": foreign_department.pk, "code": "C9", "name": "外院科室组"},
                            format="json")
    assert elsewhere.status_code == 400 and "department" in elsewhere.json()["problems"][0]["field"]
    ended_before = ClinicalTeamMember.objects.create(team=team_one, doctor="D8", since=datetime.date(2026, 5, 1))
    early = client.post(f"{TEAMS}{team_one.pk}/members/{ended_before.pk}/end/", {"until": "2026-04-01"},
                        format="json")
    assert early.status_code == 400 and early.json()["code"] == "TEAM_MEMBERSHIP_DATES"
    assert ClinicalTeam.objects.count() == 1
    assert list(ClinicalTeamMember.objects.values_list("doctor", "until")) == [("D8", None)]


def test_another_hospitals_team_and_members_are_not_found(operator, foreign_team, team_one):
    client = api_client_for(operator)
    member = ClinicalTeamMember.objects.create(team=foreign_team, doctor="D1", since=datetime.date(2026, 1, 1))
    assert client.get(f"{TEAMS}{foreign_team.pk}/").status_code == 404
    assert client.patch(f"{TEAMS}{foreign_team.pk}/", {"name": "x"}, format="json").status_code == 404
    assert join(client, foreign_team, "D2", datetime.date(2026, 1, 1)).status_code == 404
    assert client.post(f"{TEAMS}{foreign_team.pk}/members/{member.pk}/end/", {}, format="json").status_code == 404
    # a member of another team is not this team's
    assert client.post(f"{TEAMS}{team_one.pk}/members/{member.pk}/end/", {}, format="json").status_code == 404
    assert [row["id"] for row in client.get(TEAMS).json()["results"]] == [team_one.pk]
    assert ClinicalTeamMember.objects.get(pk=member.pk).until is None
    assert ClinicalTeam.objects.get(pk=foreign_team.pk).name == "外院组"


def test_readers_read_and_only_administrators_and_operators_write(
    hospital, admin, operator, auditor, keeper, cardio, ortho, team_one
):
    bones = ClinicalTeam.objects.create(hospital=hospital, department=ortho, code="O1", name="骨科一组")
    reviewer = factories.UserFactory(username="reviewer", hospital=hospital, roles=["reviewer"])
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    nurse.departments.add(ortho)
    for reader in (reviewer, auditor, keeper, admin, operator):
        assert {row["code"] for row in api_client_for(reader).get(TEAMS).json()["results"]} == {"C1", "O1"}
    assert [row["code"] for row in api_client_for(nurse).get(TEAMS).json()["results"]] == ["O1"]
    assert api_client_for(nurse).get(f"{TEAMS}{team_one.pk}/").status_code == 404
    assert api_client_for(nurse).get(f"{TEAMS}{bones.pk}/").status_code == 200

    for reader in (reviewer, auditor, keeper, nurse):
        client = api_client_for(reader)
        assert client.post(TEAMS, {"department": cardio.pk, "code": "Z", "name": "z"}, format="json").status_code == 403
        assert join(client, bones, "D1", datetime.date(2026, 1, 1)).status_code == 403
        assert client.patch(f"{TEAMS}{bones.pk}/", {"name": "z"}, format="json").status_code == 403
    assert join(api_client_for(admin), bones, "D1", datetime.date(2026, 1, 1)).status_code == 201
    assert ClinicalTeam.objects.count() == 2 and ClinicalTeamMember.objects.count() == 1
