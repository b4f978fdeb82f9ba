"""The whole count in a real browser (chromium through Playwright) against the live server on
PostgreSQL: a keeper starts a blind count and scans with a keyboard-wedge scanner (typing into the
focused scan field, then Enter), misses a unit and submits; the variance needs a recount, which the
keeper may not do and an SPD operator does; the keeper cannot approve; an administrator does, and
the ADJUSTMENT is in the ledger and on the unit's trace page."""
import re

import pytest
from playwright.sync_api import expect

from inventory.models import Movement, StocktakeSession, Unit, UnitStatus
from tests import factories
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def scan(page, code: str) -> None:
    """A keyboard-wedge scanner types into whatever has the focus: on the count page, the scan field
    takes what is typed while nothing else is edited (scan-field.js), and Enter sends it."""
    page.locator("h1").click()
    page.keyboard.type(code, delay=2)
    page.keyboard.press("Enter")


def sign_out(page) -> None:
    page.context.clear_cookies()


def test_a_count_by_scan_a_variance_a_recount_and_a_third_persons_approval(page, world, hospital, settings):
    settings.SPD_STOCKTAKE_RECOUNT_VALUE = "1000"
    approver = factories.UserFactory(username="approver", hospital=hospital, roles=["admin"])
    login(page, "keeper")
    page.goto("/stocktakes/")
    page.select_option("#start-locations", [str(world.warehouse.pk)])
    page.locator('[data-action="start"]').click()
    expect(page).to_have_url(re.compile(r"/stocktakes/\d+/$"))
    session = StocktakeSession.objects.get()
    expect(page.locator('[data-line] [data-field="expected"]').first).to_have_text("—")

    scan(page, "not-a-udi")
    expect(page.locator("[data-scan-result] li")).to_have_attribute("data-code", "UDI_UNPARSEABLE")
    for serial in ("SN-A1", "SN-C1"):
        scan(page, world.units[serial].udi_raw)
        expect(page.locator(".message.success")).to_contain_text(serial)
        expect(page.locator(f'[data-item="{serial}"] [data-field="counted"]')).to_contain_text("1")
    page.fill("#lot-lot", "L-2026")
    page.fill("#lot-quantity", "20")
    page.locator('[data-action="count-lot"]').click()
    expect(page.locator(".message.success")).to_contain_text("L-2026")
    screenshot(page, "stocktake-counting")
    page.locator('[data-action="submit"]').click()
    missing = page.locator('[data-item="SN-A2"]')
    expect(missing.locator('[data-field="variance"]')).to_have_text("-1")
    expect(missing).to_have_attribute("data-needs-recount", "")

    missing.locator("input[name=quantity]").fill("0")
    missing.locator('[data-action="recount"]').click()
    expect(page.locator('.message.error[data-code="problem STOCKTAKE_RECOUNT_BY_COUNTER"]')).to_contain_text("他人复盘")
    sign_out(page)

    login(page, "operator")
    page.goto(f"/stocktakes/{session.pk}/")
    missing = page.locator('[data-item="SN-A2"]')
    missing.locator("input[name=quantity]").fill("0")
    missing.locator('[data-action="recount"]').click()
    expect(page.locator('[data-item="SN-A2"] [data-field="recounted"]')).to_contain_text("operator")
    page.locator('[data-action="approve"]').click()
    expect(page.locator('.message.error[data-code="problem STOCKTAKE_APPROVE_OWN_VARIANCE"]')).to_contain_text("审批")
    sign_out(page)

    login(page, approver.username)
    page.goto(f"/stocktakes/{session.pk}/")
    page.locator('[data-action="approve"]').click()
    expect(page.locator(".message.success")).to_be_visible()
    session.refresh_from_db()
    assert session.status == StocktakeSession.Status.APPROVED
    (movement,) = Movement.objects.filter(document_type=Movement.DocumentType.STOCKTAKE, document_id=session.pk)
    unit = world.units["SN-A2"]
    assert (movement.kind, movement.reason_code, movement.unit_id, movement.actor_user_id) == (
        "ADJUSTMENT", "LOST", unit.pk, approver.pk)
    assert Unit.objects.get(pk=unit.pk).status == UnitStatus.SCRAPPED
    expect(page.locator('[data-item="SN-A2"] [data-field="posted"]')).to_contain_text("盘点调整")
    screenshot(page, "stocktake-approved")

    page.locator('[data-item="SN-A2"] [data-field="posted"] a').click()
    expect(page).to_have_url(re.compile(rf"/units/{unit.pk}/$"))
    expect(page.locator("main")).to_contain_text("盘点调整")
    screenshot(page, "stocktake-trace")
