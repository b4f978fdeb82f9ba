"""Review steps, lot moves, printable documents and refusals worded for people, in a real browser
(Debian's chromium through Playwright) against the live server on PostgreSQL. Screenshots in both
languages go to test-artifacts/."""
import re
import urllib.parse

import pytest
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import Consumption, LotBalance, StockOrder, Unit
from inventory.services.stock import transfer_stock
from tests.factories import gs1_udi
from tests.pdf_text import shown_strings
from tests.web.conftest import PASSWORD, login, screenshot
from tests.web.test_operations_browser import scan, settled_screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def lot_balance(world) -> LotBalance:
    return LotBalance.objects.get(product=world.lot_product, lot="L-2026", location=world.warehouse)


def test_scrap_a_unit_and_a_lot_review_confirm_and_print_the_scrap_record(page, world):
    login(page, "keeper")
    page.goto("/moves/scrap/")
    scan(page, page.locator("#move-scan"), gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A"))
    expect(page.locator("#move-lines tr[data-key]")).to_have_count(1)

    # A lot is added with its quantity: the list so far (the scanned unit) comes back with it.
    page.locator('[data-section="add-lot"] summary').click()
    page.select_option("#id_lot_balance", str(lot_balance(world).pk))
    page.fill("#id_lot_quantity_new", "3")
    page.locator('[data-action="add-lot"]').click()
    expect(page.locator("#move-lines tr[data-key]")).to_have_count(2)
    expect(page.locator('#move-lines tr[data-lot="L-2026"] input[name=lot_quantity]')).to_have_value("3")
    page.select_option("#id_reason_code", "DAMAGED")
    settled_screenshot(page, "moves-scrap-list")

    page.locator('[data-action="submit-move"]').click()
    review = page.locator('[data-section="review"]')
    expect(review.locator('[data-field="count"]')).to_contain_text("4 件")
    expect(review.locator('[data-field="value"]')).to_have_text("¥1,210.50")
    expect(review.locator('[data-field="reason"]')).to_have_text("破损")
    expect(page.locator('[data-note="irreversible"]')).to_be_visible()
    screenshot(page, "moves-scrap-review")
    assert Unit.objects.get(serial="SN-A2").status == "IN_STOCK" and lot_balance(world).quantity == 20

    page.locator('[data-action="confirm"]').click()
    order = StockOrder.objects.get(kind="SCRAP")
    expect(page).to_have_url(re.compile(rf"/moves/orders/{order.pk}/$"))
    expect(page.locator('[data-field="reason"]')).to_have_text("破损")
    assert Unit.objects.get(serial="SN-A2").status == "SCRAPPED" and lot_balance(world).quantity == 17
    screenshot(page, "moves-scrap-order")

    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator(".signatures")).to_be_visible()
    screenshot(page, "moves-scrap-order-print")
    page.emulate_media(media="screen")

    pdf = page.request.get(page.locator('[data-action="pdf"]').get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    strings = shown_strings(pdf.body())
    assert "报损单" in strings and "县人民医院" in strings and "SN SN-A2" in strings and "批号 L-2026" in strings
    assert "破损" in strings and "¥1,210.50" in strings


def test_a_return_reviewed_in_english_with_a_lot(page, world):
    login(page, "keeper")
    page.goto("/moves/return/")
    page.locator("[data-language-switch]").click()
    expect(page.locator("h1")).to_have_text("Return to supplier")
    page.locator('[data-section="add-lot"] summary').click()
    page.select_option("#id_lot_balance", str(lot_balance(world).pk))
    page.fill("#id_lot_quantity_new", "5")
    page.locator('[data-action="add-lot"]').click()
    expect(page.locator("#move-lines tr[data-key]")).to_have_count(1)
    page.select_option("#id_supplier", str(world.supplier.pk))
    page.select_option("#id_reason_code", "RECALL")
    page.locator('[data-action="submit-move"]').click()
    review = page.locator('[data-section="review"]')
    expect(review.locator('[data-field="where-to"]')).to_contain_text(world.supplier.name)
    expect(review.locator('[data-field="reason"]')).to_have_text("Recall")
    expect(review.locator('[data-field="value"]')).to_have_text("¥17.50")
    screenshot(page, "moves-return-review-en")
    assert not StockOrder.objects.filter(kind="RETURN_TO_SUPPLIER").exists()

    page.locator('[data-action="edit"]').click()  # back to the list, as it was
    expect(page.locator('#move-lines tr[data-lot="L-2026"] input[name=lot_quantity]')).to_have_value("5")
    page.locator('[data-action="submit-move"]').click()
    page.locator('[data-action="confirm"]').click()
    expect(page.locator(".message.success")).to_contain_text("Return to supplier")
    assert lot_balance(world).quantity == 15


def test_moving_a_unit_out_of_an_rfid_cabinet_warns_before_the_review(page, world, cath_lab_store):
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=world.cabinet,
                   units=[world.units["SN-A1"]], idempotency_key="a1-into-cabinet")
    login(page, "keeper")
    page.goto("/moves/")
    scan(page, page.locator("#move-scan"), gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"))
    result = page.locator("form[data-scan-form][data-rows] [data-scan-result]")
    expect(result).to_contain_text("智能柜下次盘点会报告它缺失")
    page.select_option("#id_to_location", str(cath_lab_store.pk))
    page.locator('[data-action="submit-move"]').click()
    expect(page.locator('[data-note="cabinet-warning"]')).to_contain_text("导管室智能柜1")
    screenshot(page, "moves-cabinet-warning")
    assert Unit.objects.get(serial="SN-A1").location == world.cabinet


def start_recording(page, world) -> None:
    page.goto("/use/")
    page.fill("#id_encounter", "ZY20261123888")
    page.locator('[data-action="set-context"]').click()
    expect(page.locator(".current-context h2")).to_contain_text("ZY20261123888")


@pytest.mark.parametrize(("language", "wording"), [
    ("zh-hans", "该耗材（SN-A1）仍在智能柜中，请先刷卡开柜取出再登记。"),
    ("en", "SN SN-A1 is still in the smart cabinet: open the cabinet with your badge and take it out, then record "
           "its use."),
])
def test_using_a_unit_still_in_the_cabinet_reads_as_what_to_do(page, world, cath_lab_store, language, wording):
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=world.cabinet,
                   units=[world.units["SN-A1"]], idempotency_key="a1-into-cabinet")
    login(page, "nurse")
    if language == "en":
        page.locator("[data-language-switch]").click()
    start_recording(page, world)
    scan(page, page.locator("#use-scan"), gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"))
    result = page.locator(".current-context [data-scan-result]")
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result.locator("li")).to_have_text(wording)  # no "(id)", no status machine, no prefix
    settled_screenshot(page, f"bedside-refusal-cabinet-{'zh' if language == 'zh-hans' else 'en'}")
    assert not Consumption.objects.filter(unit__serial="SN-A1").exists()


def test_a_scan_after_the_session_expired_says_so_and_keeps_the_code(page, world, cath_lab_store):
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   units=[world.units["SN-A1"]], idempotency_key="to-cath")
    login(page, "nurse")
    start_recording(page, world)
    page.context.clear_cookies()  # the session expires while the page stays open
    code = gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A")
    scan(page, page.locator("#use-scan"), code)
    result = page.locator(".current-context [data-scan-result]")
    expect(result).to_contain_text("登录已过期")
    sign_in = result.locator('[data-action="sign-in-again"]')
    expect(sign_in).to_have_text("重新登录")
    screenshot(page, "bedside-session-expired")
    assert not Consumption.objects.filter(unit__serial="SN-A1").exists()

    sign_in.click()
    page.fill("#id_username", "nurse")
    page.fill("#id_password", PASSWORD)
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url(re.compile(r"/use/\?"))
    assert "ZY20261123888" in urllib.parse.unquote(page.url)
    field = page.locator("#use-scan")
    expect(field).to_have_value(code.replace("\x1d", "\u241d"))  # back, shown with its GS mark, not sent
    expect(result).to_contain_text("登录前扫描的条码已放回输入框")
    assert not Consumption.objects.filter(unit__serial="SN-A1").exists()
    page.keyboard.press("Enter")
    expect(result).to_have_class(re.compile(r"\bok\b"))
    assert Consumption.objects.filter(unit__serial="SN-A1", encounter="ZY20261123888").count() == 1


def test_the_stock_search_takes_a_scanned_udi_with_gs(page, world):
    login(page, "keeper")
    page.goto("/stock/")
    field = page.locator("#id_q")
    field.focus()
    code = gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A")
    first, second = code.split("\x1d")
    page.keyboard.type(first, delay=2)
    page.keyboard.insert_text("\x1d")
    page.keyboard.type(second, delay=2)
    page.keyboard.press("Enter")
    rows = page.locator("table[data-table=units] tbody tr[data-unit]")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("SN-A2")
    screenshot(page, "stock-search-scanned")

    page.goto("/stock/?expiry_before=not-a-date")
    expect(page.locator('[data-note="invalid-filter"]')).to_be_visible()
    expect(page.locator("table[data-table=units]")).to_have_count(0)
    screenshot(page, "stock-invalid-filter")
