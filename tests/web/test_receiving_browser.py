"""Receiving at volume in a real browser (Debian's chromium through Playwright, live server on
PostgreSQL): a unit nobody scanned cannot pass silently, the review before the decision, a draft
resumed and discarded after confirmation, the scan field and tally in view on a long list, an error
that does not move the page, a lot quantity corrected after its scan. Screenshots in test-artifacts/."""
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import DeliveryNote, ReceivingDraft, Unit
from inventory.services.receiving import LineInput, receive_delivery_note
from tests.factories import gs1_udi
from tests.web.conftest import login, screenshot
from tests.web.test_operations_browser import scan, settled_screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PRICE = Decimal("1200.00")


def long_note(world, count=40, number="DN-VOL-1"):
    lines = [LineInput(PRICE, udi=gs1_udi(world.product.udi_di, serial=f"VOL{n:03d}", lot="LV")) for n in range(count)]
    lines.append(LineInput(Decimal("999.00"), udi=gs1_udi(world.product.udi_di, serial="VOL-BAD", lot="LV")))
    return receive_delivery_note(actor=Actor(user=world.keeper), hospital=world.warehouse.hospital,
                                 supplier=world.supplier, number=number, receiving_location=world.warehouse,
                                 lines=lines, idempotency_key=f"rcv-{number}")


def test_an_acceptance_with_unscanned_units_cannot_complete_silently(page, world):
    note = long_note(world)
    login(page, "keeper")
    page.goto(f"/receiving/{note.pk}/")
    field = page.locator("#note-scan")
    result = page.locator("form[data-scan-primary] [data-scan-result]")
    tally = page.locator("[data-tally]")
    expect(tally.locator('[data-tally-count="unverified"]')).to_have_text("40")

    for n in (0, 1, 2):
        scan(page, field, gs1_udi(world.product.udi_di, serial=f"VOL{n:03d}", lot="LV"))
        expect(tally.locator('[data-tally-count="scanned"]')).to_have_text(str(n + 1))
    expect(page.locator("#scan-feed li").first).to_contain_text("SN VOL002")  # the newest scan on top
    expect(tally.locator('[data-tally-count="accept"]')).to_have_text("3")
    expect(tally.locator('[data-tally-count="reject"]')).to_have_text("1")
    expect(tally.locator('[data-tally-count="unverified"]')).to_have_text("37")
    expect(page.locator("[data-product-summary] [data-unverified]").first).to_have_text("37")

    # Far down the list the scan field and the tally stay in view; an error does not move the page.
    page.mouse.wheel(0, 2500)
    page.wait_for_timeout(300)
    before = page.evaluate("window.scrollY")
    assert before > 500
    expect(field).to_be_in_viewport()
    expect(tally).to_be_in_viewport()
    scan(page, field, gs1_udi(world.product.udi_di, serial="NOT-HERE", lot="LV"))
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result).to_contain_text("扫描的条码不在送货单 DN-VOL-1 的任何一行上")
    assert page.evaluate("window.scrollY") == before
    expect(field).to_be_focused()
    settled_screenshot(page, "receiving-volume-scanning")

    page.locator('[data-action="finish"]').click()
    expect(page.locator("h1")).to_contain_text("验收复核")
    unverified = page.locator('[data-review="unverified"]')
    expect(unverified.locator("tbody tr")).to_have_count(37)
    expect(page.locator('[data-review="accept"] tbody tr')).to_have_count(3)
    expect(page.locator('[data-review="reject"] tbody tr')).to_have_count(1)
    expect(page.locator("[data-product-totals]")).to_contain_text("41")
    expect(page.locator("[data-accept-unscanned]")).to_have_count(0)  # a keeper cannot skip the scans
    screenshot(page, "receiving-review")

    page.locator('[data-action="decide"]').click()
    expect(page.locator(".message.warning")).to_contain_text("37 件未扫码的耗材仍待验收")
    expect(page.locator("[data-note-status]")).to_have_attribute("data-note-status", "PARTLY_ACCEPTED")
    expect(page.locator('#note-lines [data-verdict="unverified"]')).to_have_count(37)
    assert Unit.objects.filter(serial__startswith="VOL").count() == 3
    screenshot(page, "receiving-partly-accepted")


def test_an_operator_accepts_the_rest_without_scanning_with_a_reason(page, world):
    note = long_note(world, count=3, number="DN-OP-1")
    login(page, "operator")
    page.goto(f"/receiving/{note.pk}/review/")
    page.locator("[data-accept-unscanned]").check()
    expect(page.locator("#unscanned-reason")).to_be_focused()
    page.locator('[data-action="decide"]').click()
    expect(page.locator("#unscanned-reason:invalid")).to_have_count(1)  # the browser asks for the reason first
    page.fill("#unscanned-reason", "扫码枪故障，按纸质送货单逐件核对")
    page.locator('[data-action="decide"]').click()
    expect(page.locator(".message.success")).to_contain_text("3 行通过，1 行拒收")
    expect(page.locator("[data-without-scan]")).to_have_count(3)
    assert DeliveryNote.objects.get(pk=note.pk).status == "ACCEPTED"

    pdf = page.request.get(page.locator('[data-action="record-pdf"]').get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    screenshot(page, "receiving-accepted-without-scan")


def test_a_draft_is_resumed_by_a_colleague_and_discarded_after_confirmation(page, world, browser_page):
    login(page, "keeper")
    page.goto("/receiving/new/")
    page.select_option("#id_supplier", str(world.supplier.pk))
    page.fill("#id_number", "DN-DRAFT-1")
    page.select_option("#id_receiving_location", str(world.warehouse.pk))
    page.get_by_role("button", name="开始扫描").click()
    field = page.locator("#draft-code")
    scan(page, field, gs1_udi(world.product.udi_di, serial="DR1", lot="LD"))
    expect(page.locator("[data-count-of='#draft-lines']")).to_have_text("1")
    scan(page, field, gs1_udi(world.lot_product.udi_di, lot="LD-LOT"))
    expect(page.locator("[data-count-of='#draft-lines']")).to_have_text("2")
    rows = page.locator("#draft-lines tr[data-key]")
    expect(rows.first).to_have_attribute("data-key", "2")  # the newest scan on top

    # The lot's quantity is corrected after its scan, in place.
    quantity = rows.first.locator("[data-quantity]")
    quantity.fill("36")
    rows.first.locator('[data-action="save-quantity"]').click()
    expect(page.locator("form[data-scan-primary] [data-scan-result]")).to_contain_text("× 36")
    expect(page.locator("[data-product-totals]")).to_contain_text("37")
    assert ReceivingDraft.objects.get(number="DN-DRAFT-1").lines[1]["quantity"] == 36
    settled_screenshot(page, "receiving-draft-volume")

    # The keeper leaves; an operator of the same hospital finds the draft and resumes it.
    login(browser_page, "operator")
    browser_page.goto("/receiving/")
    draft_row = browser_page.locator("table[data-table=drafts] tr", has_text="DN-DRAFT-1")
    expect(draft_row).to_contain_text("keeper")
    expect(draft_row.locator("[data-draft-lines]")).to_have_text("2")
    screenshot(browser_page, "receiving-drafts-list")
    draft_row.locator('[data-action="resume"]').click()
    expect(browser_page.locator("#draft-lines tr[data-key]")).to_have_count(2)

    # Discarding asks first; "keep" goes back to the draft, "yes" throws it away.
    browser_page.locator('[data-action="discard"]').click()
    expect(browser_page.locator("[data-confirm-discard]")).to_contain_text("2 行")
    screenshot(browser_page, "receiving-discard-confirm")
    browser_page.locator('[data-action="keep-draft"]').click()
    expect(browser_page.locator("#draft-lines tr[data-key]")).to_have_count(2)
    assert ReceivingDraft.objects.filter(number="DN-DRAFT-1").exists()
    browser_page.locator('[data-action="discard"]').click()
    browser_page.locator('[data-action="confirm-discard"]').click()
    expect(browser_page.locator(".message.success")).to_contain_text("草稿送货单 DN-DRAFT-1 已作废")
    expect(browser_page.locator("table[data-table=drafts]")).not_to_contain_text("DN-DRAFT-1")
    assert not ReceivingDraft.objects.filter(number="DN-DRAFT-1").exists()


@pytest.fixture
def browser_page(chromium, live_server):
    """A second browser (own cookies): a colleague at another workstation."""
    context = chromium.get().new_context(base_url=live_server.url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                         viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()
