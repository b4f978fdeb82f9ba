"""Who may do what through the API. Reads: any signed-in user of a hospital. Writes: by role."""
from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from inventory.models import Role

MASTER_DATA_EDITORS = (Role.ADMIN, Role.SPD_OPERATOR)
STOCK_HANDLERS = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR)


class RoleBasedAccess(BasePermission):
    """Authenticated users bound to a hospital read; writes need one of the view's `write_roles`.

    Auditors are read-only everywhere. Views default to administrators only for writes.
    """

    message = "Your role does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not user.is_superuser and user.hospital_id is None:
            return False
        if request.method in SAFE_METHODS:
            return True
        return user.has_role(*getattr(view, "write_roles", (Role.ADMIN,)))
