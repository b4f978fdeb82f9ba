"""Who belongs to which county alliance (医共体), and who works for the alliance as a whole.

An alliance is its hospitals: those sharing the same `Hospital.alliance` name, one of them the lead
(`is_lead`). Alliance staff are bound to the lead hospital (or the alliance SPD centre, a hospital
record of its own in the alliance) and hold an alliance role: they see every member. Everybody else
sees their own hospital only (selectors.scope).

An alliance account is kept apart from a hospital account: a user holding an alliance role *and* a
hospital role (keeper, operator…) keeps their hospital's scope everywhere but the alliance pages —
so no hospital write path ever reaches into another member's books through a widened scope.
"""
from django.db.models import QuerySet

from inventory.models import Hospital, Role, User

ALLIANCE_ROLES = (Role.ALLIANCE_OPERATOR, Role.ALLIANCE_AUDITOR, Role.ALLIANCE_ADMIN)
_ALLIANCE_NAMES = frozenset(role.value for role in ALLIANCE_ROLES)
# Those who keep the alliance catalog and its agreements (with the lead hospital's stewards).
ALLIANCE_KEEPERS = (Role.ALLIANCE_ADMIN, Role.ALLIANCE_OPERATOR)
HOSPITAL_ROLES = tuple(role for role in Role if role not in ALLIANCE_ROLES and role != Role.SUPPLIER)
_HOSPITAL_NAMES = frozenset(role.value for role in HOSPITAL_ROLES)


def alliance_members(hospital: Hospital) -> QuerySet[Hospital]:
    """The hospitals of `hospital`'s alliance, itself included; a hospital in no alliance is alone."""
    if not hospital.alliance:
        return Hospital.objects.filter(pk=hospital.pk)
    return Hospital.objects.filter(alliance=hospital.alliance)


def lead_of(alliance: str) -> Hospital | None:
    return Hospital.objects.filter(alliance=alliance, is_lead=True).order_by("pk").first() if alliance else None


def holds_alliance_role(user: User, *roles: Role) -> bool:
    """Whether the user holds one of `roles` (default: any alliance role) as a group — superusers are
    alliance administrators only when bound to no hospital (selectors.scope.sees_all_hospitals)."""
    if not getattr(user, "is_authenticated", False):
        return False
    names = {role.value for role in (roles or ALLIANCE_ROLES)}
    return bool(user.role_names() & names)


def is_alliance_user(user: User) -> bool:
    """A person working for the alliance: an alliance role, bound to a hospital that is in an alliance."""
    hospital = getattr(user, "hospital", None)
    return hospital is not None and bool(hospital.alliance) and holds_alliance_role(user)


def reads_across_members(user: User) -> bool:
    """Whether the user's scope is the whole alliance: an alliance account (alliance roles only). Asked
    on every scoped read: the roles are read once per request, the hospital only for alliance staff."""
    if not getattr(user, "is_authenticated", False) or user.is_superuser:
        return False
    names = user.role_names()
    if not names & _ALLIANCE_NAMES or names & _HOSPITAL_NAMES:
        return False
    hospital = getattr(user, "hospital", None)
    return hospital is not None and bool(hospital.alliance)


def alliance_hospitals_for(user: User) -> list[int]:
    """The ids of the hospitals the user works across on the alliance pages: every member for alliance
    staff (and every hospital for an unbound superuser), else their own hospital."""
    if getattr(user, "is_superuser", False) and getattr(user, "hospital_id", None) is None:
        return list(Hospital.objects.order_by("pk").values_list("pk", flat=True))
    hospital = getattr(user, "hospital", None)
    if hospital is None:
        return []
    if is_alliance_user(user):
        return list(alliance_members(hospital).order_by("pk").values_list("pk", flat=True))
    return [hospital.pk]


def alliance_of(user: User) -> str:
    """The name of the user's alliance ("" when their hospital is in none)."""
    hospital = getattr(user, "hospital", None)
    return hospital.alliance if hospital is not None else ""


def keeps_alliance_catalog(user: User) -> bool:
    """Whether the user keeps the alliance catalog: an alliance administrator or operator, or an
    administrator or SPD operator of the lead hospital (the alliance stewards)."""
    from inventory.selectors.scope import is_alliance_steward

    if is_alliance_user(user) and holds_alliance_role(user, *ALLIANCE_KEEPERS):
        return True
    return bool(alliance_of(user)) and is_alliance_steward(user)
