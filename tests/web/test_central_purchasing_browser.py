"""Central purchasing in Chromium: the centre's operator finds the page in the alliance menu, places a
central order for two members (a refused quantity shown on the form, what was typed kept), the
regional warehouse receives it, and each member's share is distributed; and a central plan from the
members' demand is proposed and placed; the order form suggests the lead hospital's products as one
types, and the plan takes a 医保 code exemption reason for a product without a 医保 code."""
import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from inventory.models import AllianceTransfer, CentralOrder, CentralOrderAllocation, PlanDemandSource
from inventory.services.receiving import LineInput
from tests.factories import TODAY
from tests.inventory.test_alliance_transfers import receive_at_regional_warehouse
from tests.inventory.test_central_planning import (  # noqa: F401 (fixtures)
    centre,
    demand,
    members,
    no_agreement_product,
)
from tests.web.conftest import login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_centre_places_a_central_order_for_two_members_and_distributes_it(
    page, hospital, warehouse, supplier, lot_product, members, centre,  # noqa: F811
):
    m1, m2 = members
    login(page, centre.username)
    page.locator('nav.mainnav [data-menu="alliance"] > summary').click()
    page.locator('nav.mainnav [data-menu="alliance"] a[href="/alliance/central-orders/"]').click()
    expect(page).to_have_url(re.compile(r"/alliance/central-orders/$"))

    form = page.locator("[data-form='place-central-order']")
    form.locator("select[name='supplier']").select_option(str(supplier.pk))
    form.locator("select[name='regional_warehouse']").select_option(str(warehouse.pk))
    form.locator("input[name='promised_date']").fill(str(TODAY + datetime.timedelta(days=3)))
    form.locator("input[name='product-0']").fill(lot_product.internal_code)
    form.locator(f"input[name='quantity-0-{m1.hospital.pk}']").fill("4")
    form.locator(f"input[name='quantity-0-{m2.hospital.pk}']").fill("0")
    form.locator("[data-action='place-central-order']").click()

    expect(page.locator(".problems li[data-code='CENTRAL_ORDER_INVALID']")).to_have_count(1)
    assert not CentralOrder.objects.exists()
    form = page.locator("[data-form='place-central-order']")
    assert form.locator("input[name='product-0']").input_value() == lot_product.internal_code  # kept
    form.locator(f"input[name='quantity-0-{m2.hospital.pk}']").fill("6")
    form.locator("[data-action='place-central-order']").click()

    central = CentralOrder.objects.get()
    section = page.locator(f"[data-order='{central.pk}']")
    expect(section).to_contain_text(central.purchase_order.number)
    shares = {row.get_attribute("data-member"): row.locator("[data-field='share']").inner_text()
              for row in section.locator("[data-allocation]").all()}
    assert shares == {str(m1.hospital.pk): "4", str(m2.hospital.pk): "6"}

    receive_at_regional_warehouse(centre, supplier, warehouse, central.purchase_order, [LineInput(
        Decimal("3.50"), product=lot_product, lot="L1", expiry=TODAY + datetime.timedelta(days=700), quantity=10)],
        "DN-WEB-1")
    for member in (m1, m2):
        page.goto("/alliance/central-orders/")
        row = page.locator(f"[data-order='{central.pk}'] [data-member='{member.hospital.pk}']")
        expect(row.locator("[data-field='delivered']")).to_have_text("10 / 10")
        row.locator("[data-action='distribute']").click()
        expect(page).to_have_url(re.compile(r"/alliance/transfers/\d+/$"))
    page.goto("/alliance/central-orders/")
    distributed = {row.get_attribute("data-member"): row.locator("[data-field='distributed']").inner_text()
                   for row in page.locator(f"[data-order='{central.pk}'] [data-allocation]").all()}
    assert distributed == {str(m1.hospital.pk): "4", str(m2.hospital.pk): "6"}
    assert page.locator(f"[data-order='{central.pk}'] [data-action='distribute']").count() == 0
    assert sorted(AllianceTransfer.objects.filter(central_order=central).values_list(
        "to_hospital__code", "kind")) == [("M1", "DISTRIBUTION"), ("M2", "DISTRIBUTION")]
    assert sorted(CentralOrderAllocation.objects.values_list("distributed_quantity", flat=True)) == [4, 6]


def test_the_centre_places_a_central_plan_from_the_members_demand(
    page, warehouse, product, members, demand, centre,  # noqa: F811
):
    login(page, centre.username)
    page.locator('nav.mainnav [data-menu="alliance"] > summary').click()
    page.locator('nav.mainnav [data-menu="alliance"] a[href="/alliance/central-orders/plan/"]').click()
    for box in page.locator("[data-form='central-demand'] input[type='checkbox']").all():
        box.check()
    page.click("[data-action='propose']")

    expect(page.locator("[data-list='unplanned'] [data-code='DEMAND_NO_AGREEMENT']")).to_have_count(1)
    page.fill(f"input[name='platform_reference-{product.pk}']", "YG-WEB-1")
    page.click("[data-action='place-central-plan']")

    expect(page).to_have_url(re.compile(r"/alliance/central-orders/$"))
    central = CentralOrder.objects.get()
    expect(page.locator(f"[data-order='{central.pk}']")).to_be_visible()
    assert PlanDemandSource.objects.count() == 4
    assert central.purchase_order.lines.get(product=product).platform_reference == "YG-WEB-1"


def test_the_order_form_suggests_lead_products_and_the_plan_takes_a_nhsa_exemption(
    page, hospital, warehouse, product, lot_product, members, demand, centre,  # noqa: F811
):
    lot_product.nhsa_code = ""
    lot_product.save(update_fields=["nhsa_code"])
    login(page, centre.username)
    page.goto("/alliance/central-orders/")
    field = page.locator("[data-form='place-central-order'] input[name='product-0']")
    field.press_sequentially("输液")
    options = page.locator("#lead-products option")
    expect(options).to_have_count(1)  # the lead's product, not the members' linked copies
    expect(options.first).to_have_attribute("value", lot_product.internal_code)

    page.goto("/alliance/central-orders/plan/")
    for box in page.locator("[data-form='central-demand'] input[type='checkbox']").all():
        box.check()
    page.click("[data-action='propose']")
    expect(page.locator("[data-list='unplanned'] [data-code='NHSA_CODE_MISSING']")).to_have_count(3)
    page.locator(f"[data-table='nhsa-exemptions'] input[name='nhsa_exemption-{lot_product.pk}']").fill("过渡期")
    page.click("[data-action='propose-again']")

    expect(page.locator("[data-list='unplanned'] [data-code='NHSA_CODE_MISSING']")).to_have_count(0)
    row = page.locator(f"[data-table='proposed-lines'] tr[data-product='{lot_product.pk}']")
    expect(row.locator(f"input[name='nhsa_exemption-{lot_product.pk}']")).to_have_value("过渡期")
    page.fill(f"input[name='platform_reference-{product.pk}']", "YG-WEB-2")
    page.click("[data-action='place-central-plan']")

    expect(page).to_have_url(re.compile(r"/alliance/central-orders/$"))
    line = CentralOrder.objects.get().purchase_order.lines.get(product=lot_product)
    assert (line.quantity, line.nhsa_exemption_reason) == (20, "过渡期")
