"""How an API request is authenticated by its token (a module of its own: DRF imports it while
setting up its views, so it must not import them).

A token stops working when its user's password changes (`User.save` deletes it) and, when
`SPD_API_TOKEN_TTL_HOURS` is set, that many hours after it was issued; the client then signs in again
(`POST /api/v1/auth/token/`) and gets a new one."""
import datetime

from django.conf import settings
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
    does something asks for it next (`caller_hospital`). Expired tokens are refused and deleted."""

    def authenticate_credentials(self, key: str) -> tuple:
        model = self.get_model()
        token = model.objects.select_related("user__hospital").filter(key=key).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if token_expired(token):
            token.delete()
            raise TokenExpired()
        return token.user, token


class TokenExpired(exceptions.AuthenticationFailed):
    """A token older than SPD_API_TOKEN_TTL_HOURS: its own code, so a client knows to sign in again."""

    default_code = Refusal.TOKEN_EXPIRED.name
    default_detail = _("The token has expired; sign in again.")
