"""The processing station in a real browser (Debian's chromium through Playwright) on PostgreSQL: scan
the members, assemble, print the label — and the printed label scans back to the very pack."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import LabelPrint, Pack
from inventory.selectors.units import resolve_scan
from inventory.services.processing import LineInput as PackLine
from inventory.services.processing import save_definition
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests.conftest import stock_units
from tests.factories import LocationFactory
from tests.inventory.test_labels import images_in, scanned
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def hri(di: str, *, expiry: datetime.date, lot: str = "", serial: str = "") -> str:
    """A label as a scanner configured to send the human-readable form types it."""
    return f"(01){di}(17){expiry:%y%m%d}" + (f"(10){lot}" if lot else "") + (f"(21){serial}" if serial else "")


def test_scan_members_assemble_and_print_the_label_of_a_kit(page, world, hospital):
    actor = Actor(user=world.keeper)
    station = LocationFactory(hospital=hospital, code="PROC-1", name="中心库加工间", kind="PROCESSING_STATION")
    unit = stock_units(actor, world.supplier, station, world.product, ["KIT-U1"])[0]
    expiry = timezone.localdate() + datetime.timedelta(days=300)
    note = receive_delivery_note(
        actor=actor, hospital=hospital, supplier=world.supplier, number="DN-KIT", receiving_location=station,
        lines=[LineInput(Decimal("3.50"), product=world.lot_product, lot="L-KIT", expiry=expiry, quantity=5)],
        idempotency_key="rcv-kit",
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key="acc-kit")
    definition = save_definition(user=world.keeper, hospital=hospital, code="KIT-PCI", name="PCI 手术包",
                                 kind="KIT", lines=[PackLine(world.product, 1), PackLine(world.lot_product, 2)])

    login(page, "operator")
    page.locator('nav.mainnav [data-menu="inbound"] > summary').click()  # its menu
    page.get_by_role("link", name="加工", exact=True).click()
    expect(page.locator("h1")).to_contain_text("加工")
    page.select_option("#id_definition", str(definition.pk))
    page.select_option("#id_station", str(station.pk))
    page.get_by_role("button", name="显示").click()
    expect(page.locator("table[data-table=proposal]")).to_contain_text("KIT-U1")

    field = page.locator("#member-scan")
    field.fill(hri(unit.di, expiry=unit.expiry, serial=unit.serial))
    field.press("Enter")
    expect(page.locator("[data-count=scanned]")).to_have_text("1")
    page.locator("#member-quantity").fill("3")
    page.locator("#member-scan").fill(hri(world.lot_product.udi_di, expiry=expiry, lot="L-KIT"))
    page.locator("#member-scan").press("Enter")
    expect(page.locator("[data-count=scanned]")).to_have_text("2")
    page.locator('[data-action="assemble"]').click()
    expect(page.locator("[role=alert]")).to_contain_text("包内只需 2，却扫了 3")  # one too many: refused, list kept

    page.get_by_role("button", name="移除").nth(1).click()
    page.locator("#member-quantity").fill("2")
    page.locator("#member-scan").fill(hri(world.lot_product.udi_di, expiry=expiry, lot="L-KIT"))
    page.locator("#member-scan").press("Enter")
    screenshot(page, "processing-station")
    page.locator('[data-action="assemble"]').click()
    expect(page.locator("[data-pack-status]")).to_have_attribute("data-pack-status", "IN_STOCK")
    pack = Pack.objects.get()
    expect(page.locator("table[data-table=members] tbody tr")).to_have_count(2)
    screenshot(page, "processing-pack")

    printed = []

    def keep_the_pdf(route) -> None:  # the browser's PDF viewer would show it; the test reads its bytes
        answer = route.fetch()
        printed.append((answer.status, answer.headers["content-type"], answer.body()))
        route.fulfill(response=answer)

    page.context.route("**/processing/packs/*/label/", keep_the_pdf)
    page.locator('[data-action="print-label"]').click()
    page.wait_for_timeout(500)
    for _ in range(50):
        if printed:
            break
        page.wait_for_timeout(200)
    [(status, content_type, body)] = printed
    assert (status, content_type) == (200, "application/pdf")
    [image] = images_in(body)
    assert resolve_scan(hospital, scanned(image)).unit == pack.unit
    assert LabelPrint.objects.get().unit == pack.unit
