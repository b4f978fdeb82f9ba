"""Token login for integrators. Failed attempts count towards django-axes lock-out, as web logins do."""
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from inventory.api.authentication import token_expired
from inventory.api.errors import error_body, error_response
from inventory.client_address import client_address
from inventory.errors import Refusal


class LoginRateThrottle(ScopedRateThrottle):
    """The login throttle, per real client address (not a client-supplied X-Forwarded-For)."""

    def get_ident(self, request: Request) -> str:
        return client_address(request)


class CredentialsSerializer(serializers.Serializer):
    # Bounded: a megabyte of username must be a 400, not a lookup (nor a row django-axes cannot store).
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"}, trim_whitespace=False)


class ObtainTokenView(APIView):
    """Exchange a username and password for an API token (header `Authorization: Token <key>`)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=CredentialsSerializer,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request._request, **credentials.validated_data)
        if user is None or not user.is_active:
            return Response(error_body(Refusal.INVALID_CREDENTIALS), status=status.HTTP_400_BAD_REQUEST)
        token, _ = Token.objects.get_or_create(user=user)
        if token_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key})


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """django-axes lock-out: the API gets the same JSON error shape as every other error."""
    if request.path.startswith("/api/"):
        return error_response(Refusal.LOCKED_OUT)
    from inventory.web.views.auth import locked_out  # the people's page, in their language

    return locked_out(request, credentials)
