"""The login lock-out (django-axes) and the login throttle count per real client address: a
client-supplied X-Forwarded-For is believed only as far as our trusted reverse proxies wrote it."""
import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from inventory.api.auth import LoginRateThrottle
from inventory.client_address import client_address

pytestmark = pytest.mark.django_db
PROXY = "10.0.0.7"


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().post("/api/v1/auth/token/", **extra)


@pytest.mark.parametrize(("trusted", "remote", "forwarded", "client"), [
    ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # no proxy trusted: the header is ignored
    ([PROXY], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not through our proxy: ignored
    ([PROXY], PROXY, "198.51.100.1", "198.51.100.1"),
    ([PROXY], PROXY, "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # the client's own prefix is skipped
    (["10.0.0.0/24"], PROXY, "198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two proxies of ours
    ([PROXY], PROXY, "not-an-address", PROXY),
    ([PROXY], PROXY, None, PROXY),
    (["2001:db8::/32"], "2001:db8::1", "2001:db9::5", "2001:db9::5"),
])
def test_the_client_is_the_first_address_not_of_a_trusted_proxy(settings, trusted, remote, forwarded, client):
    settings.SPD_TRUSTED_PROXIES = trusted

    assert client_address(request_from(remote, forwarded)) == client


def test_the_login_throttle_counts_the_same_address(settings):
    settings.SPD_TRUSTED_PROXIES = [PROXY]
    request = request_from(PROXY, "9.9.9.9, 198.51.100.1")

    assert LoginRateThrottle().get_ident(request) == "198.51.100.1"


def fail(client: APIClient, **headers: str) -> int:
    return client.post("/api/v1/auth/token/", {"username": "keeper", "password": "wrong"}, **headers).status_code


def test_a_new_forwarded_for_with_every_guess_does_not_escape_the_lockout(keeper, settings):
    settings.SPD_TRUSTED_PROXIES = []
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    answers = [fail(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(5)]

    assert answers == [400, 400, 400, 400, 429]
    right = client.post("/api/v1/auth/token/", {"username": "keeper", "password": "pw-Secret-123"},
                        HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert (right.status_code, right.json()["code"]) == (429, "LOCKED_OUT")


def test_behind_a_trusted_proxy_each_client_is_locked_out_on_its_own(keeper, settings):
    settings.SPD_TRUSTED_PROXIES = [PROXY]
    client = APIClient(REMOTE_ADDR=PROXY)

    answers = [fail(client, HTTP_X_FORWARDED_FOR=f"{n}.1.1.1, 198.51.100.1") for n in range(5)]

    assert answers[-1] == 429
    other = client.post("/api/v1/auth/token/", {"username": "keeper", "password": "pw-Secret-123"},
                        HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert other.status_code == 200, other.json()
