"""A hospital's plan from demand in Chromium: a product without a 医保 code is not planned; the
operator gives it an exemption reason on the page and proposes again; the plan shows the reason and
the purchase order line keeps it."""
import re

import pytest
from playwright.sync_api import expect

from inventory.models import PurchaseOrder
from tests import factories
from tests.inventory.test_plan_from_demand import suggest
from tests.web.conftest import login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_operator_gives_a_nhsa_exemption_reason_and_proposes_again(page, hospital, operator, cath_lab_store,
                                                                          supplier):
    no_code = factories.SupplyAgreementFactory(hospital=hospital, supplier=supplier, product__hospital=hospital,
                                               product__nhsa_code="", product__name="无医保编码耗材").product
    wanted = suggest(cath_lab_store, no_code, 4)
    login(page, operator.username)
    page.goto("/purchasing/plans/new/")
    page.locator(f"input[name='suggestion'][value='{wanted.pk}']").check()
    page.click("[data-action='make-plan']")

    expect(page.locator(".problems [data-code='NHSA_CODE_MISSING']")).to_have_count(1)
    expect(page.locator(f"input[name='suggestion'][value='{wanted.pk}']")).to_be_checked()  # the tick kept
    page.locator(f"[data-table='nhsa-exemptions'] input[name='nhsa_exemption-{no_code.pk}']").fill("院内自制试剂")
    page.click("[data-action='propose-again']")

    expect(page).to_have_url(re.compile(r"/purchasing/plans/\d+/$"))
    expect(page.locator("[data-nhsa-exemption='1']")).to_contain_text("院内自制试剂")
    page.fill("input[name='platform_reference-1']", "YG-BR-1")
    page.click("[data-action='order-plan']")
    expect(page.locator("[data-plan-status='ORDERED']")).to_be_visible()
    line = PurchaseOrder.objects.get().lines.get()
    assert (line.product, line.quantity, line.nhsa_exemption_reason) == (no_code, 4, "院内自制试剂")
