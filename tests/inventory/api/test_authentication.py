"""Token authentication of API requests: DRF's, reading the user's hospital with the token."""
import pytest
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
