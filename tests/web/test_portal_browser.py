"""The supplier portal in a real browser (Debian's chromium, live server on PostgreSQL): a supplier's
user pastes 50 UDIs (and one bad line) into an electronic delivery note and submits it; the keeper
opens the resulting delivery note, scans the 50 units and accepts them; the order is delivered.
The portal's pages ask nothing of the internet (they are not in the offline check's admin tour)."""
import datetime
from urllib.parse import urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import AdvanceShippingNotice, PurchaseOrder, Unit
from inventory.services.purchasing import OrderLineInput, create_purchase_order
from tests import factories
from tests.factories import gs1_udi
from tests.web.conftest import login, screenshot
from tests.web.test_operations_browser import scan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
COUNT = 50


def hri(di: str, serial: str, expiry: datetime.date) -> str:
    """The UDI as printed under the barcode (human-readable), as a supplier's system exports it."""
    return f"(01){di}(17){expiry:%y%m%d}(21){serial}"


def test_supplier_pastes_50_udis_and_the_keeper_accepts_them_by_scanning(page, world, live_server):
    product = world.product
    order = create_purchase_order(
        actor=Actor(user=world.operator), hospital=world.warehouse.hospital, supplier=world.supplier,
        promised_date=timezone.localdate() + datetime.timedelta(days=2),
        lines=[OrderLineInput(product=product, quantity=COUNT, platform_reference="YG-2026-88")],
    )
    factories.UserFactory(username="vendor", hospital=None, supplier=world.supplier, roles=["supplier"])
    expiry = timezone.localdate() + datetime.timedelta(days=400)
    serials = [f"ASN{n:03d}" for n in range(COUNT)]
    own = urlparse(live_server.url).netloc
    outside: list[str] = []

    def guard(route) -> None:
        if urlparse(route.request.url).netloc not in ("", own) and route.request.url.startswith("http"):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", guard)

    # The supplier: the portal is their home; they paste 50 UDIs and one line that is no UDI.
    login(page, "vendor")
    expect(page.locator("h1")).to_contain_text("供应商门户")
    expect(page.locator('nav.mainnav a[href="/stock/"]')).to_have_count(0)  # no hospital menu
    page.locator(f'[data-order="{order.number}"] a').click()
    page.fill("#asn-number", "ASN-2026-0001")
    pasted = [hri(product.udi_di, serial, expiry) for serial in serials[:25]] + ["NOT-A-UDI"] + [
        hri(product.udi_di, serial, expiry) for serial in serials[25:]
    ]
    page.fill("#asn-udis", "\n".join(pasted))
    page.locator('[data-action="create-asn"]').click()
    expect(page.locator("[data-asn-status]")).to_have_attribute("data-asn-status", "DRAFT")
    expect(page.locator("[data-asn-lines]")).to_have_attribute("data-asn-lines", str(COUNT))
    expect(page.locator('.message[data-code~="UDI_UNPARSEABLE"]')).to_contain_text("第 26 行")
    screenshot(page, "portal-asn-draft")
    page.locator('[data-action="submit-asn"]').click()
    expect(page.locator("[data-asn-status]")).to_have_attribute("data-asn-status", "SUBMITTED")
    note = AdvanceShippingNotice.objects.get(number="ASN-2026-0001").delivery_note
    assert page.goto("/stock/").status == 403  # nothing of the hospital's own
    assert outside == []

    # The keeper: the delivery note is waiting; each unit is scanned, then the acceptance is decided.
    page.context.clear_cookies()
    login(page, "keeper")
    page.goto(f"/receiving/{note.pk}/")
    field = page.locator("#note-scan")
    tally = page.locator("[data-tally]")
    expect(tally.locator('[data-tally-count="unverified"]')).to_have_text(str(COUNT))
    for n, serial in enumerate(serials, start=1):
        scan(page, field, gs1_udi(product.udi_di, serial=serial, expiry=expiry))
        expect(tally.locator('[data-tally-count="scanned"]')).to_have_text(str(n))
    expect(tally.locator('[data-tally-count="accept"]')).to_have_text(str(COUNT))
    page.locator('[data-action="finish"]').click()
    expect(page.locator('[data-review="accept"] tbody tr')).to_have_count(COUNT)
    page.locator('[data-action="decide"]').click()
    expect(page.locator("[data-note-status]")).to_have_attribute("data-note-status", "ACCEPTED")
    screenshot(page, "portal-asn-accepted")

    assert Unit.objects.filter(serial__in=serials, status="IN_STOCK").count() == COUNT
    order.refresh_from_db()
    assert order.status == PurchaseOrder.Status.DELIVERED
    page.goto(f"/purchasing/{order.pk}/")
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "DELIVERED")
    assert outside == []
