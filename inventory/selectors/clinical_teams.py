"""Which clinical teams (诊疗组) a person sees: their hospital's; a nurse, her departments' teams."""
from django.db.models import Prefetch, QuerySet

from inventory.models import ClinicalTeam, ClinicalTeamMember, User
from inventory.selectors.scope import departments_of, visible_to


def teams_visible_to(user: User) -> QuerySet:
    """The teams with their department and members (oldest membership first)."""
    members = ClinicalTeamMember.objects.order_by("doctor", "since", "pk")
    teams = visible_to(user, ClinicalTeam.objects.select_related("department").prefetch_related(
        Prefetch("members", members)))
    departments = departments_of(user)
    if departments is not None:
        teams = teams.filter(department__in=departments)
    return teams.order_by("department__code", "code", "pk")
