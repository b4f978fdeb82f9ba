"""Who may do what through the API. Reads: any signed-in user of a hospital, except the hospital's
books (receiving, settlements, reconciliation), which are for the roles that read them on the web
too. Writes: by role. What rows a reader sees is `selectors.scope` (a nurse: her departments)."""
from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from inventory.models import Role

MASTER_DATA_EDITORS = (Role.ADMIN, Role.SPD_OPERATOR)
STOCK_HANDLERS = (Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR)
# The whole hospital's books: the roles of `web.access.READERS` (not nurses, who see their departments).
# Alliance staff read every member's books (inventory.alliance).
BOOK_READERS = (
    Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.AUDITOR,
    Role.ALLIANCE_OPERATOR, Role.ALLIANCE_AUDITOR, Role.ALLIANCE_ADMIN,
)
# The consumable review, 耗占比, red lines, recalls and implant records: the book readers and the
# 医保办/医务处 reviewer, who reads these (and no receiving, settlement or reconciliation books).
REVIEW_READERS = (*BOOK_READERS, Role.REVIEWER)


class RoleBasedAccess(BasePermission):
    """Authenticated users bound to a hospital read; writes need one of the view's `write_roles`.

    Auditors are read-only everywhere. Views default to administrators only for writes; a view
    with `read_roles` lets only those roles read.
    """

    message = "Your role does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not user.is_superuser and user.hospital_id is None:
            return False
        if request.method in SAFE_METHODS:
            read_roles = getattr(view, "read_roles", None)
            return read_roles is None or user.has_role(*read_roles)
        return user.has_role(*getattr(view, "write_roles", (Role.ADMIN,)))


class DocsAccess(BasePermission):
    """The API schema and its docs (/api/schema/, /api/docs/, /api/redoc/) describe every endpoint: for
    signed-in users, or for anyone when `SPD_API_DOCS_PUBLIC` opens them."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return settings.SPD_API_DOCS_PUBLIC or bool(request.user and request.user.is_authenticated)
