"""The central purchasing pages through Django's test client: a member hospital's own staff do not
find them (404, not in their menu); the centre's operator does."""
import pytest
from django.test import Client

from tests.inventory.test_central_planning import centre, members, no_agreement_product  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PAGES = ("/alliance/central-orders/", "/alliance/central-orders/plan/")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_member_hospitals_staff_get_a_404_and_no_menu_entry(members):  # noqa: F811
    m1, _m2 = members
    for user in (m1.keeper, m1.operator):
        client = client_for(user)
        for path in PAGES:
            assert client.get(path).status_code == 404, (user, path)
        assert client.post(PAGES[0], {"action": "place"}).status_code == 404
        assert 'href="/alliance/central-orders/' not in client.get("/").content.decode()


def test_the_centres_operator_finds_both_pages_in_the_alliance_menu(centre, members):  # noqa: F811
    client = client_for(centre)
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    menu = client.get("/").content.decode()
    assert all(f'href="{path}"' in menu for path in PAGES)
