"""What a user may see: their own hospital's objects. Everything else does not exist for them."""
from django.db.models import QuerySet

from inventory.models import User


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
