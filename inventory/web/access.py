"""Who may open which page. Every page is for signed-in people of a hospital with one of the roles.

The role sets here are used both by the views (`web_page`) and by the navigation (`nav.NAV`), so a
link is shown exactly to the people the page lets in.
"""
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from inventory.alliance import ALLIANCE_ROLES
from inventory.models import Role, User

# Every hospital role; a supplier's staff use the supplier portal only (web/views/portal.py).
EVERYONE = frozenset(Role) - {Role.SUPPLIER}
# the whole hospital's books (alliance staff read every member's: inventory.alliance)
READERS = frozenset({Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.AUDITOR, *ALLIANCE_ROLES})
# The consumable review, 耗占比, red lines, recalls and implant exports: also the 医保办/医务处 reviewer.
REVIEW_READERS = READERS | {Role.REVIEWER}
# The alliance pages (catalog, dashboard): alliance staff, and a member's readers for their own part.
ALLIANCE_READERS = READERS
STOCK_HANDLERS = frozenset({Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR})
EVALUATION_READERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR, Role.AUDITOR})  # supplier evaluation
CLINICAL = frozenset({Role.ADMIN, Role.WAREHOUSE, Role.SPD_OPERATOR, Role.NURSE})
# Acknowledging and resolving alerts: everyone but auditors, who only read.
ALERT_HANDLERS = CLINICAL
LOGIN_URL = "web:login"


def roles_of(user: User) -> frozenset[str]:
    """The user's roles, read once per request (superusers hold them all)."""
    if not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return frozenset(role.value for role in Role)
    return user.role_names() & {role.value for role in Role}


def may(user: User, roles: frozenset[str]) -> bool:
    """Whether the user may use something open to `roles`: bound to a hospital (or an alliance
    administrator) and holding one of them."""
    if not user.is_authenticated:
        return False
    if user.hospital_id is None and not user.is_superuser:
        return False
    return bool(roles_of(user) & {str(role) for role in roles})


def web_page(roles: frozenset[str] = EVERYONE) -> Callable:
    """Decorate a view: sign-in required (redirect to the login page), then one of `roles` (else 403)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not may(request.user, roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(guarded, login_url=LOGIN_URL)

    return decorate
