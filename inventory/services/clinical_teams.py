"""Clinical teams (诊疗组) and their dated memberships: what a use is reviewed under (docs/review.md).

A team belongs to one department of its hospital. A doctor (by HIS code) is a member from `since`
until `until` (open: still in it); on any day a doctor is in at most one team of a department, so
the team a use is recorded under (`services.consumption.team_at_use`) is never a guess. Memberships
are never deleted: a doctor leaves by ending the membership, and the uses recorded meanwhile keep
their team.

Lock order: the department row (every change of a team's members or department locks the
departments concerned, by id), then the team. Two memberships of one doctor added at once to two
teams of a department are serialised by it: the second sees the first and is refused.
"""
import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Coalesce

from inventory.errors import Refusal, Refused
from inventory.models import ClinicalTeam, ClinicalTeamMember, Department, Hospital
from inventory.validators import refuse_personal_ids

OPEN_END = datetime.date.max  # an open membership (`until` empty) as a date, for comparing intervals


def create_team(*, hospital: Hospital, department: Department, code: str, name: str) -> ClinicalTeam:
    """A new clinical team of one of the hospital's departments; its code is unique in the hospital."""
    code, name = code.strip(), name.strip()
    _refuse_foreign_department(hospital, department)
    with transaction.atomic():
        _refuse_taken_code(hospital, code)
        try:
            with transaction.atomic():
                return ClinicalTeam.objects.create(hospital=hospital, department=department, code=code, name=name)
        except IntegrityError:  # the same code created at the same moment
            raise Refused(Refusal.CLINICAL_TEAM_CODE_TAKEN, code=code) from None


def update_team(
    *, team: ClinicalTeam, department: Department | None = None, code: str | None = None, name: str | None = None,
    is_active: bool | None = None,
) -> ClinicalTeam:
    """Rename, recode, (de)activate a team or move it to another department of the hospital. A move is
    refused when one of its members would then be in two teams of the new department on a day."""
    hospital = team.hospital
    if department is not None:
        _refuse_foreign_department(hospital, department)
    with transaction.atomic():
        moving = department is not None and department.pk != team.department_id
        _lock_departments({team.department_id, department.pk} if moving else {team.department_id})
        locked = ClinicalTeam.objects.select_for_update().get(pk=team.pk)
        if code is not None and code.strip() != locked.code:
            _refuse_taken_code(hospital, code.strip())
            locked.code = code.strip()
        if name is not None:
            locked.name = name.strip()
        if is_active is not None:
            locked.is_active = is_active
        if moving:
            _refuse_overlaps_after_move(locked, department)
            locked.department = department
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise Refused(Refusal.CLINICAL_TEAM_CODE_TAKEN, code=locked.code) from None
    return locked


def add_member(
    *, team: ClinicalTeam, doctor: str, since: datetime.date, until: datetime.date | None = None,
) -> ClinicalTeamMember:
    """The doctor joins the team from `since` (until `until`, or open). Refused when the doctor is, on
    one of those days, already in a team of the same department (this one included)."""
    doctor = doctor.strip()
    if not doctor:
        raise Refused(Refusal.TEAM_DOCTOR_REQUIRED, field="doctor")
    refuse_personal_ids(doctor=doctor)
    if until is not None and until < since:
        raise Refused(Refusal.TEAM_MEMBERSHIP_DATES, since=since, until=until, field="until")
    with transaction.atomic():
        _lock_departments({team.department_id})
        team = ClinicalTeam.objects.select_related("department").get(pk=team.pk)
        _refuse_overlap(team.department, doctor, since, until)
        return ClinicalTeamMember.objects.create(team=team, doctor=doctor, since=since, until=until)


def end_member(*, member: ClinicalTeamMember, until: datetime.date) -> ClinicalTeamMember:
    """End an open membership on `until` (its last day in the team)."""
    with transaction.atomic():
        locked = ClinicalTeamMember.objects.select_for_update().select_related("team").get(pk=member.pk)
        if locked.until is not None:
            raise Refused(Refusal.TEAM_MEMBERSHIP_ENDED, doctor=locked.doctor, team=locked.team.name,
                          until=locked.until)
        if until < locked.since:
            raise Refused(Refusal.TEAM_MEMBERSHIP_DATES, since=locked.since, until=until, field="until")
        locked.until = until
        locked.save(update_fields=["until"])
    return locked


def _refuse_foreign_department(hospital: Hospital, department: Department) -> None:
    if department.hospital_id != hospital.pk:
        raise Refused(Refusal.NOT_FOUND, what="department", field="department")


def _refuse_taken_code(hospital: Hospital, code: str) -> None:
    if ClinicalTeam.objects.filter(hospital=hospital, code=code).exists():
        raise Refused(Refusal.CLINICAL_TEAM_CODE_TAKEN, code=code, field="code")


def _lock_departments(ids: set[int]) -> None:
    list(Department.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))


def _overlapping(since: object, until: object) -> Q:
    """Memberships whose days meet [since, until] (`until` None: open)."""
    return Q(since__lte=until if until is not None else OPEN_END) & (Q(until__isnull=True) | Q(until__gte=since))


def _refuse_overlap(department: Department, doctor: str, since: datetime.date, until: datetime.date | None) -> None:
    other = (ClinicalTeamMember.objects.select_related("team__department")
             .filter(team__department=department, doctor=doctor).filter(_overlapping(since, until))
             .order_by("since", "pk").first())
    if other is not None:
        raise _overlap_refusal(other)


def _refuse_overlaps_after_move(team: ClinicalTeam, department: Department) -> None:
    """One query: a member of `team` whose days meet a membership of the same doctor in a team of `department`."""
    clash = ClinicalTeamMember.objects.filter(
        team__department=department, doctor=OuterRef("doctor"),
        since__lte=Coalesce(OuterRef("until"), Value(OPEN_END)),
    ).filter(Q(until__isnull=True) | Q(until__gte=OuterRef("since"))).exclude(team=team)
    member = (ClinicalTeamMember.objects.filter(team=team).filter(Exists(clash)).order_by("doctor", "since").first())
    if member is not None:
        other = (ClinicalTeamMember.objects.select_related("team__department")
                 .filter(team__department=department, doctor=member.doctor).exclude(team=team)
                 .filter(_overlapping(member.since, member.until)).order_by("since", "pk").first())
        raise _overlap_refusal(other)


def _overlap_refusal(other: ClinicalTeamMember) -> Refused:
    return Refused(Refusal.TEAM_MEMBERSHIP_OVERLAPS, doctor=other.doctor, team=other.team.name,
                   department=other.team.department.name, since=other.since, until=other.until or "…",
                   field="since")
