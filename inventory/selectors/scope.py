"""What a user may see: their own hospital's objects — and, for a nurse, her departments' part of
them. Everything else does not exist for them.

These are the only scoping rules: the web pages (`selectors.stock.StockScope`), the API viewsets and
serializer fields, and the services that check a department (use on a patient) all call them.
"""
from django.db.models import QuerySet

from inventory.models import Role, User

# Roles that see their whole hospital; anyone else (nurses) sees their own departments only.
HOSPITAL_WIDE_ROLES = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.AUDITOR)


def sees_all_hospitals(user: User) -> bool:
    """Alliance administrators: superusers bound to no hospital."""
    return bool(user.is_superuser) and getattr(user, "hospital_id", None) is None


def visible_to(user: User, queryset: QuerySet, hospital_field: str = "hospital") -> QuerySet:
    """Restrict `queryset` to the user's hospital (`hospital_field` is the lookup path to it, e.g.
    "device__hospital", or "pk" for hospitals themselves); alliance administrators see all."""
    if sees_all_hospitals(user):
        return queryset
    hospital_id = getattr(user, "hospital_id", None)
    if hospital_id is None:
        return queryset.none()
    return queryset.filter(**{hospital_field: hospital_id})


def departments_of(user: User) -> frozenset[int] | None:
    """The departments a person is limited to: None (the whole hospital) for the hospital-wide roles,
    else the departments they are assigned to — none at all means nothing, never everything."""
    if not user.is_authenticated:
        return frozenset()
    if user.has_role(*HOSPITAL_WIDE_ROLES):
        return None
    cached = getattr(user, "_scope_departments", None)
    if cached is None:
        cached = frozenset(user.departments.values_list("pk", flat=True))
        user._scope_departments = cached
    return cached
