"""What a user may see: their own hospital's objects. Everything else does not exist for them."""
from django.db.models import QuerySet

from inventory.models import User


def visible_to(user: User, queryset: QuerySet, hospital_field: str = "hospital") -> QuerySet:
    """Restrict `queryset` to the user's hospital; alliance superusers without a hospital see all."""
    hospital_id = getattr(user, "hospital_id", None)
    if user.is_superuser and hospital_id is None:
        return queryset
    if hospital_id is None:
        return queryset.none()
    return queryset.filter(**{f"{hospital_field}_id": hospital_id})

