"""The packaging units page (/products/<id>/packaging/): read by the books' readers, edited by the
warehouse and SPD operators with the API's checks; a refused edit changes nothing."""
import pytest

from inventory.models import PackagingUnit
from inventory.services.units_of_measure import describe_quantity
from tests.web.test_pages import client_for, text

pytestmark = pytest.mark.django_db


def url(product):
    return f"/products/{product.pk}/packaging/"


def units(product):
    return sorted(PackagingUnit.objects.filter(product=product)
                  .values_list("name", "factor", "is_purchase_unit", "is_billing_unit"))


def form(*rows, purchase="", billing=""):
    data = {"rows": len(rows), "purchase": purchase, "billing": billing}
    for index, (name, factor) in enumerate(rows):
        data[f"name-{index}"], data[f"factor-{index}"] = name, factor
    return data


def test_the_warehouse_adds_changes_and_removes_units(world):
    product, keeper = world.lot_product, client_for(world.keeper)
    assert 'data-action="save-packaging"' in text(keeper.get(url(product)))
    saved = keeper.post(url(product), form(("盒", "10"), ("箱", "100"), purchase="0", billing=""))
    assert saved.status_code == 302
    assert units(product) == [("盒", 10, True, False), ("箱", 100, False, False)]
    product.refresh_from_db()
    assert describe_quantity(product=product, base_quantity=123).startswith("1 箱 2 盒 3")
    keeper.post(url(product), form(("盒", "10"), ("", ""), purchase="0", billing="0"))
    assert units(product) == [("盒", 10, True, True)]
    assert 'data-link="packaging"' in text(keeper.get(f"/products/{product.pk}/prices/"))
    page = text(client_for(world.auditor).get(url(product)))
    assert 'data-unit="盒"' in page and 'data-action="save-packaging"' not in page


@pytest.mark.parametrize("rows, field", [
    ((("盒", "1"),), "packaging_units[0].factor"),
    ((("盒", "2.5"),), "packaging_units[0].factor"),
    ((("盒", "10"), ("包", "10")), "packaging_units[1].factor"),
    ((("盒", "10"), ("盒", "20")), "packaging_units[1].name"),
    ((("", "10"),), "packaging_units[0].name"),
])
def test_bad_units_are_refused_naming_the_field_and_change_nothing(world, rows, field):
    product = world.lot_product
    PackagingUnit.objects.create(product=product, name="袋", factor=5)
    response = client_for(world.keeper).post(url(product), form(*rows))
    assert response.status_code == 400
    assert field in [problem.item for problem in response.context["problems"]]
    assert units(product) == [("袋", 5, False, False)]


def test_the_base_unit_name_is_refused_and_an_auditor_cannot_post(world):
    product = world.lot_product
    response = client_for(world.keeper).post(url(product), form((product.unit_of_measure, "10")))
    assert response.status_code == 400 and units(product) == []
    assert client_for(world.auditor).post(url(product), form(("盒", "10"))).status_code == 403
    assert units(product) == []
    nurse = client_for(world.nurse)
    assert nurse.get(url(product)).status_code == 403
