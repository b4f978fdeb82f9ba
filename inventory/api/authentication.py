"""How an API request is authenticated by its token (a module of its own: DRF imports it while
setting up its views, so it must not import them)."""
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, reading the user's hospital with the token: every request that
    does something asks for it next (`caller_hospital`)."""

    def authenticate_credentials(self, key: str) -> tuple:
        model = self.get_model()
        token = model.objects.select_related("user__hospital").filter(key=key).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
