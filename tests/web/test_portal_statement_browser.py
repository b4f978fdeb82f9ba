"""A supplier's user confirms a consignment settlement statement in the portal, in real Chromium
(live server on PostgreSQL); the page asks nothing of the internet; the hospital then sees the
supplier's confirmation and settles."""
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import SupplierSettlement
from inventory.services.settlement_workflow import settle_statement
from inventory.services.settlements import confirm_settlement
from tests import factories
from tests.inventory.test_settlements import Clinic, consignment_product, draft, may
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_supplier_confirms_a_statement_in_the_portal(page, world, live_server):
    hospital, supplier = world.warehouse.hospital, world.supplier
    clinic = Clinic(hospital)
    stent = consignment_product(hospital, supplier, name="药物洗脱支架")
    for day in (3, 8, 21):
        clinic.use_unit(stent, supplier, may(day), cost="1200.00")
    statement = confirm_settlement(settlement=draft(hospital, supplier, Actor(user=world.operator)),
                                   actor=Actor(user=world.operator))
    factories.UserFactory(username="vendor", hospital=None, supplier=supplier, roles=["supplier"])
    own = urlparse(live_server.url).netloc
    outside: list[str] = []

    def guard(route) -> None:
        if route.request.url.startswith("http") and urlparse(route.request.url).netloc != own:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", guard)
    login(page, "vendor")
    page.locator(f'[data-statement="{statement.pk}"] a').click()
    expect(page.locator("[data-statement-stage]")).to_have_attribute("data-statement-stage", "ISSUED")
    expect(page.locator('[data-table="statement-lines"] tbody tr')).to_have_count(3)
    expect(page.locator("[data-statement-total]")).to_have_text("3600.00")
    with page.expect_download() as download:
        page.locator('[data-download="xlsx"]').click()
    assert download.value.suggested_filename.endswith(".xlsx")
    page.locator('[data-action="confirm-statement"]').click()
    expect(page.locator("[data-statement-stage]")).to_have_attribute("data-statement-stage", "SUPPLIER_CONFIRMED")
    expect(page.locator('[data-event="SUPPLIER_CONFIRMED"]')).to_have_count(1)
    expect(page.locator('[data-action="confirm-statement"]')).to_have_count(0)
    screenshot(page, "portal-statement-confirmed")
    assert outside == []

    settled = settle_statement(settlement=SupplierSettlement.objects.get(pk=statement.pk),
                               actor=Actor(user=world.operator))
    assert settled.stage == "SETTLED"
