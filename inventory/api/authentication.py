"""How an API request is authenticated by its token (a module of its own: DRF imports it while
setting up its views, so it must not import them).

A token stops working when its user's password changes (`User.save` deletes it) and, when
`SPD_API_TOKEN_TTL_HOURS` is set, that many hours after it was issued; the client then signs in again
(`POST /api/v1/auth/token/`) and gets a new one."""
import datetime

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from inventory.errors import Refusal


def token_expired(token: Token, now: datetime.datetime | None = None) -> bool:
    hours = settings.SPD_API_TOKEN_TTL_HOURS
    if not hours:
        return False
    return token.created + datetime.timedelta(hours=hours) <= (now or timezone.now())


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, reading the user's hospital with the token: every request that
    does something asks for it next (`caller_hospital`). On PostgreSQL the user's roles and
    departments come in the same query (`User.remember_scope`): the permission check and the
    department scope ask for them next, often more than once. Expired tokens are refused and deleted."""

    def authenticate_credentials(self, key: str) -> tuple:
        token = _with_scope(self.get_model().objects.select_related("user__hospital")).filter(key=key).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if token_expired(token):
            token.delete()
            raise TokenExpired()
        if hasattr(token, "role_names"):
            token.user.remember_scope(roles=token.role_names, department_ids=token.department_ids)
        return token.user, token


def _with_scope(tokens: QuerySet) -> QuerySet:
    """The tokens with their user's role names and department ids as arrays (PostgreSQL only; the
    embedded SQLite has no array subquery and reads them when asked, as before)."""
    if connection.vendor != "postgresql":
        return tokens
    from django.contrib.auth.models import Group
    from django.contrib.postgres.expressions import ArraySubquery

    from inventory.models import User

    departments = User.departments.through.objects.filter(user_id=OuterRef("user_id")).values("department_id")
    return tokens.annotate(
        role_names=ArraySubquery(Group.objects.filter(user=OuterRef("user_id")).values("name")),
        department_ids=ArraySubquery(departments),
    )


class TokenExpired(exceptions.AuthenticationFailed):
    """A token older than SPD_API_TOKEN_TTL_HOURS: its own code, so a client knows to sign in again."""

    default_code = Refusal.TOKEN_EXPIRED.name
    default_detail = _("The token has expired; sign in again.")
