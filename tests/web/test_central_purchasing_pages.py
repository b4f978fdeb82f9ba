"""The central purchasing pages through Django's test client: a member hospital's own staff do not
find them (404, not in their menu); the centre's operator does. The plan page takes a 医保 code
exemption reason for a product without one; the order form's product fields suggest the lead
hospital's products only."""
import pytest
from django.test import Client

from inventory.models import CentralOrder
from tests import factories
from tests.factories import TODAY
from tests.inventory.test_central_planning import (  # noqa: F401 (fixtures)
    centre,
    demand,
    members,
    no_agreement_product,
)

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


def test_a_product_without_a_nhsa_code_is_planned_once_the_page_is_given_an_exemption_reason(
    hospital, warehouse, centre, members, demand, product, lot_product,  # noqa: F811
):
    lot_product.nhsa_code = ""
    lot_product.save(update_fields=["nhsa_code"])
    client = client_for(centre)
    selection = {"suggestion": [s.pk for s in demand["suggestions"]],
                 "requisition_line": [line.pk for line in demand["requisition_lines"]]}

    page = client.post(PAGES[1], {**selection, "action": "propose"}).content.decode()
    assert 'data-code="NHSA_CODE_MISSING"' in page
    assert page.count(f'name="nhsa_exemption-{lot_product.pk}"') == 1  # offered once, though three needs miss it
    assert f'<tr data-product="{lot_product.pk}"><td><span class="code">' in page  # in the exemptions table

    page = client.post(PAGES[1], {**selection, "action": "propose",
                                  f"nhsa_exemption-{lot_product.pk}": "  院内自制编码过渡期  "}).content.decode()
    assert 'data-code="NHSA_CODE_MISSING"' not in page
    assert f'name="nhsa_exemption-{lot_product.pk}" value="院内自制编码过渡期"' in page  # carried to the placing
    assert not CentralOrder.objects.exists()

    response = client.post(PAGES[1], {
        **selection, "action": "place", "regional_warehouse": warehouse.pk, "promised_date": str(TODAY),
        f"platform_reference-{product.pk}": "YG-EX-1", f"nhsa_exemption-{lot_product.pk}": "院内自制编码过渡期",
    })
    assert response.status_code == 302, response.content.decode()
    line = CentralOrder.objects.get().purchase_order.lines.get(product=lot_product)
    assert (line.quantity, line.nhsa_exemption_reason) == (20, "院内自制编码过渡期")


def test_the_central_order_form_suggests_only_the_lead_hospitals_products(hospital, centre, members, lot_product):  # noqa: F811
    page = client_for(centre).get(PAGES[0]).content.decode()
    url = f"/products/suggest/?hospital={hospital.pk}"
    assert f'list="lead-products" data-suggest-url="{url}"' in page and '<datalist id="lead-products">' in page
    alliance_staff = factories.UserFactory(username="alliance-op", hospital=hospital, roles=["alliance_operator"])
    client = client_for(alliance_staff)
    everyone = [p["code"] for p in client.get("/products/suggest/", {"q": lot_product.name}).json()["products"]]
    assert sorted(everyone) == sorted([lot_product.internal_code, f"M1-{lot_product.internal_code}",
                                       f"M2-{lot_product.internal_code}"])  # alliance staff see every member's
    lead_only = client.get("/products/suggest/", {"q": lot_product.name, "hospital": hospital.pk}).json()["products"]
    assert [p["code"] for p in lead_only] == [lot_product.internal_code]
    m1, _m2 = members
    assert client_for(m1.operator).get(  # another hospital's catalog through the parameter: nothing
        "/products/suggest/", {"q": lot_product.name, "hospital": hospital.pk}).json()["products"] == []
