"""Token authentication of API requests: DRF's, reading the user's hospital with the token; tokens end
with a password change and, when configured, after a lifetime; the schema and docs need a signed-in user."""
import datetime

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory.api.authentication import TokenAuthentication

pytestmark = pytest.mark.django_db


def token_client(user, key: str | None = None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key or Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_the_token_brings_its_user_and_the_users_hospital_in_one_query(keeper, hospital, django_assert_num_queries):
    key = Token.objects.create(user=keeper).key
    with django_assert_num_queries(1):
        user, token = TokenAuthentication().authenticate_credentials(key)
        assert (user.pk, user.hospital.code, token.key) == (keeper.pk, hospital.code, key)
    assert token_client(keeper).get(f"/api/v1/hospitals/{hospital.pk}/").json()["code"] == hospital.code


def test_an_unknown_token_or_an_inactive_user_is_refused(keeper, hospital):
    assert token_client(keeper, key="0" * 40).get("/api/v1/units/").status_code == 401
    client = token_client(keeper)
    keeper.is_active = False
    keeper.save()
    refused = client.get("/api/v1/units/", HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 401 and "inactive" in refused.json()["detail"].lower()


def test_changing_the_password_ends_the_users_api_tokens(keeper, operator):
    client, others = token_client(keeper), token_client(operator)
    assert client.get("/api/v1/units/").status_code == 200

    keeper.set_password("a-New-Secret-456")
    keeper.save()

    assert client.get("/api/v1/units/").status_code == 401
    assert not Token.objects.filter(user=keeper).exists()
    assert others.get("/api/v1/units/").status_code == 200
    fresh = APIClient().post("/api/v1/auth/token/", {"username": "keeper", "password": "a-New-Secret-456"})
    assert token_client(keeper, key=fresh.json()["token"]).get("/api/v1/units/").status_code == 200


def test_saving_a_user_without_a_new_password_keeps_the_tokens(keeper):
    client = token_client(keeper)
    keeper.first_name = "王"
    keeper.save()

    assert client.get("/api/v1/units/").status_code == 200


def test_a_token_expires_after_the_configured_hours_and_signing_in_gives_a_new_one(keeper, settings):
    settings.SPD_API_TOKEN_TTL_HOURS = 8
    token = Token.objects.create(user=keeper)
    client = token_client(keeper, key=token.key)
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - datetime.timedelta(hours=7, minutes=59))
    assert client.get("/api/v1/units/").status_code == 200

    Token.objects.filter(pk=token.pk).update(created=timezone.now() - datetime.timedelta(hours=8, minutes=1))
    expired = client.get("/api/v1/units/", HTTP_ACCEPT_LANGUAGE="en")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert not Token.objects.filter(key=token.key).exists()

    Token.objects.create(user=keeper)  # an old token the sign-in finds, also expired
    Token.objects.filter(user=keeper).update(created=timezone.now() - datetime.timedelta(days=2))
    fresh = APIClient().post("/api/v1/auth/token/", {"username": "keeper", "password": "pw-Secret-123"}).json()
    assert token_client(keeper, key=fresh["token"]).get("/api/v1/units/").status_code == 200


def test_without_a_lifetime_tokens_do_not_expire(keeper, settings):
    settings.SPD_API_TOKEN_TTL_HOURS = 0
    token = Token.objects.create(user=keeper)
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - datetime.timedelta(days=400))

    assert token_client(keeper, key=token.key).get("/api/v1/units/").status_code == 200


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_the_api_schema_and_docs_need_a_signed_in_user_unless_opened(keeper, settings, path):
    assert APIClient().get(path).status_code == 401
    assert token_client(keeper).get(path).status_code == 200
    page = Client()
    page.force_login(keeper)
    assert page.get(path).status_code == 200

    settings.SPD_API_DOCS_PUBLIC = True
    assert APIClient().get(path).status_code == 200
