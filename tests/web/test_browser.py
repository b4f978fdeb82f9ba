"""The pages in a real browser (Playwright driving Debian's chromium) against a live server on
PostgreSQL: sign in, find a unit in stock and open its trace, trace by scanning, handle an alert,
switch language. Each main page is saved as a screenshot in test-artifacts/."""
import re

import pytest
from playwright.sync_api import expect

from devices.models import Device
from inventory.models import Alert
from tests.factories import gs1_udi
from tests.web.conftest import ENCOUNTER, login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_keeper_signs_in_finds_a_unit_in_stock_and_opens_its_trace(page, world):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.locator("h1")).to_have_text("登录")
    screenshot(page, "login")
    login(page, "keeper")

    expect(page.locator("h1")).to_have_text("首页")
    expect(page.locator('[data-card="alerts"] .figure')).to_have_text("2")
    expect(page.locator('[data-card="consumption"] .figure')).to_have_text("¥1,200.00")
    expect(page.locator('[data-card="his"] .figure')).to_have_text("1")
    expect(page.locator('[data-card="cabinets"]')).to_contain_text("导管室智能柜1号（RFID）")
    expect(page.locator('[data-card="stock-value"]')).to_contain_text("¥11,270.00")
    screenshot(page, "dashboard")

    page.locator('nav.mainnav [data-menu="inventory"] > summary').click()  # its menu
    page.get_by_role("link", name="库存").click()
    expect(page.locator("[data-result-count]")).to_have_attribute("data-result-count", "3")
    product_field = page.locator("#id_product")
    product_field.press_sequentially(world.product.name[:4], delay=20)
    expect(page.locator(f'#product-suggestions option[value="{world.product.internal_code}"]')).to_have_count(1)
    product_field.fill(world.product.internal_code)
    page.select_option("#id_status", "ANY")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("[data-result-count]")).to_have_attribute("data-result-count", "3")
    expect(page.locator("table[data-table=units] tbody tr")).to_have_count(3)
    screenshot(page, "stock")

    page.get_by_role("link", name="SN-A3").click()
    expect(page).to_have_url(re.compile(rf"/units/{world.used.pk}/$"))
    expect(page.locator('[data-field="supplier"]')).to_contain_text(world.supplier.name)
    timeline = page.locator("ol.timeline")
    expect(timeline.locator('[data-event="ACCEPTANCE"]')).to_contain_text("已验收")
    expect(timeline.locator('[data-event="MOVEMENT_PUTAWAY"]')).to_contain_text("中心库")
    expect(timeline.locator('[data-event="MOVEMENT_TRANSFER"]')).to_contain_text(world.cabinet.name)
    expect(timeline.locator('[data-event="MOVEMENT_CABINET_TAKE"]')).to_contain_text("开关门")
    expect(timeline.locator('[data-document="consumption"]')).to_contain_text(ENCOUNTER)
    expect(timeline.locator("[data-charge]")).to_contain_text("推送失败，正在重试")
    screenshot(page, "trace")


def test_typing_a_scan_with_a_group_separator_into_the_nav_field_opens_the_trace(page, world):
    login(page, "keeper")
    unit = world.units["SN-A2"]
    before, after = gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A").split("\x1d")

    page.keyboard.press("/")  # focus the scan field from anywhere, as a scanner user would
    field = page.locator("#nav-scan")
    expect(field).to_be_focused()
    page.keyboard.type(before, delay=5)
    page.keyboard.press("Control+BracketRight")  # how keyboard-wedge scanners send GS
    page.keyboard.type(after, delay=5)
    expect(field).to_have_value(before + "\u241d" + after)  # the GS is shown as ␝
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/units/{unit.pk}/$"))
    expect(page.locator("h1")).to_contain_text(world.product.name)

    # A scan fired at the page with nothing focused lands in the field; an unknown code says why, in red.
    page.locator("h1").click()
    page.keyboard.type(gs1_udi(world.product.udi_di, serial="NOPE"), delay=5)
    page.keyboard.press("Enter")
    result = page.locator(".nav-scan [data-scan-result]")
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result).to_contain_text("未找到耗材")
    expect(page).to_have_url(re.compile(rf"/units/{unit.pk}/$"))


def test_a_station_whose_scanner_sends_a_substitute_for_gs_is_read_right(page, world, hospital):
    station = Device.objects.create(hospital=hospital, code="WS-CW", name="中心库扫码工作站",
                                    kind=Device.Kind.WEDGE_SCANNER, config={"gs_substitute": "|"})
    login(page, "keeper")
    page.goto("/station/")
    page.select_option("#id_station", str(station.pk))
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".message.success")).to_be_visible()

    page.locator("#nav-scan").fill(gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A").replace("\x1d", "|"))
    page.locator("#nav-scan").press("Enter")
    expect(page).to_have_url(re.compile(rf"/units/{world.units['SN-A1'].pk}/$"))


def test_acknowledge_then_resolve_an_alert_with_a_note(page, world):
    login(page, "keeper")
    page.locator('nav.mainnav [data-menu="inventory"] > summary').click()  # its menu
    page.get_by_role("link", name="预警", exact=True).click()
    item = page.locator(f'[data-alert="{world.alert.pk}"]')
    expect(item).to_contain_text("将于 2026-12-20 过期，剩余 27 天")
    screenshot(page, "alerts")

    item.get_by_placeholder("备注（选填）").fill("已通知供应商换货")
    item.locator('[data-action="acknowledge"]').click()
    expect(page.locator(".message.success")).to_contain_text("已确认预警")
    item = page.locator(f'[data-alert="{world.alert.pk}"]')
    expect(item.locator("[data-alert-status]")).to_have_text("已确认")
    expect(item).to_contain_text("已通知供应商换货")

    item.get_by_placeholder("如何解决的？（必填）").fill("已退货")
    item.locator('[data-action="resolve"]').click()
    expect(page.locator(".message.success")).to_contain_text("已解决预警")
    expect(page.locator(f'[data-alert="{world.alert.pk}"]')).to_have_count(0)
    world.alert.refresh_from_db()
    assert (world.alert.status, world.alert.resolve_note) == (Alert.Status.RESOLVED, "已退货")
    assert world.alert.acknowledge_note == "已通知供应商换货"


def test_switching_to_english_and_back(page, world):
    login(page, "keeper")
    page.goto("/stock/")
    page.locator("[data-language-switch]").click()
    expect(page).to_have_url(re.compile(r"/stock/$"))
    expect(page.locator("h1")).to_have_text("Stock")
    expect(page.locator("nav.mainnav")).to_contain_text("Dashboard")
    screenshot(page, "stock-en")
    page.locator("[data-language-switch]").click()
    expect(page.locator("h1")).to_have_text("库存")


def test_a_tablet_sees_the_whole_dashboard(page, world):
    page.set_viewport_size({"width": 820, "height": 1180})
    login(page, "keeper")  # a nurse's home is her work instead: tests/web/test_nurse_browser.py
    expect(page.locator("h1")).to_have_text("首页")
    expect(page.locator('[data-card="alerts"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "dashboard-tablet")
