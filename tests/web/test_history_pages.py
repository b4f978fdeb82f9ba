"""The change-history page: who changed which master data, from what to what; for the books' readers."""
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.conftest import api_client_for, stock_units


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


@pytest.mark.postgres
def test_the_page_shows_who_changed_a_product_and_both_values(operator, auditor, product):
    # (a price is not edited in place: a price change is a new dated agreement, docs/procurement.md)
    before = product.name
    api_client_for(operator).patch(f"/api/v1/products/{product.pk}/", {"name": "改名后的支架"}, format="json")

    page = client_for(auditor).get(reverse("web:history"), {"kind": "products", "object": product.pk})

    assert page.status_code == 200
    html = page.content.decode()
    assert "operator" in html and "name" in html
    assert before in html and "改名后的支架" in html
    assert html.count("data-change=") == 2  # the creation and the change


@pytest.mark.postgres
def test_another_hospitals_changes_are_not_listed(auditor, hospital, other_hospital):
    factories.ProductFactory(hospital=hospital, name="本院的导管")
    factories.ProductFactory(hospital=other_hospital, name="别院的导管")

    html = client_for(auditor).get(reverse("web:history"), {"kind": "products"}).content.decode()

    assert "本院的导管" in html and "别院的导管" not in html


def test_the_page_is_for_the_books_readers_and_says_whether_history_is_recorded(hospital, auditor):
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])

    assert client_for(nurse).get(reverse("web:history")).status_code == 403
    page = client_for(auditor).get(reverse("web:history"))
    assert page.status_code == 200
    assert reverse("web:history") in page.content.decode()  # in the menu
    assert (b"data-history-not-recorded" in page.content) is (connection.vendor != "postgresql")


def test_an_unknown_kind_shows_products(auditor):
    page = client_for(auditor).get(reverse("web:history"), {"kind": "patients", "object": "x"})

    assert page.status_code == 200
    assert page.context["kind"].slug == "products"


def test_the_trace_of_a_unit_links_to_its_products_history_for_the_books_readers(
    keeper_actor, supplier, warehouse, product, auditor, hospital
):
    unit = stock_units(keeper_actor, supplier, warehouse, product, ["HIST-LINK-1"])[0]
    nurse = factories.UserFactory(username="nurse", hospital=hospital, roles=["nurse"])
    link = f'{reverse("web:history")}?kind=products&amp;object={product.pk}'

    assert link in client_for(auditor).get(reverse("web:unit-trace", args=[unit.pk])).content.decode()
    assert link not in client_for(nurse).get(reverse("web:unit-trace", args=[unit.pk])).content.decode()
