"""The operation pages in a real browser (Debian's chromium through Playwright) against the live
server on PostgreSQL: a keyboard-wedge scanner is played by typing into the focused scan field,
with the GS1 group separator sent as the real control character or as the station's substitute."""
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from devices.models import Device
from inventory.actors import Actor
from inventory.models import ChargeDelivery, Consumption, DeliveryNote, StockOrder, Unit
from inventory.services.his import deliver_due_charges
from inventory.services.receiving import LineInput, receive_delivery_note
from inventory.services.stock import transfer_stock
from inventory.simulation.fake_his import FakeHis
from tests.factories import gs1_udi
from tests.web.conftest import login, screenshot
from tests.web.test_operations_pages import stock_the_cabinet

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def settled_screenshot(page, name: str) -> None:
    """A screenshot once the highlight of the last scanned row has faded."""
    page.wait_for_timeout(1800)
    screenshot(page, name)


def scan(page, field, code: str) -> None:
    """Type a code as a wedge scanner does, each GS sent as the bare control character, then Enter."""
    field.focus()
    parts = code.split("\x1d")
    for index, part in enumerate(parts):
        if index:
            page.keyboard.insert_text("\x1d")
        page.keyboard.type(part, delay=2)
    page.keyboard.press("Enter")


def test_receive_a_delivery_by_scanning_with_gs_and_see_accepted_and_rejected_rows(page, world, hospital):
    product = world.product
    receive_delivery_note(actor=Actor(user=world.keeper), hospital=hospital, supplier=world.supplier,
                          number="DN-API-7", receiving_location=world.warehouse, idempotency_key="rcv-api-7",
                          lines=[LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="API-1"))])
    login(page, "operator")
    page.locator('nav.mainnav [data-menu="inbound"] > summary').click()  # its menu
    page.get_by_role("link", name="验收", exact=True).click()
    expect(page.locator("h1")).to_have_text("验收")
    expect(page.locator("table[data-table=awaiting]")).to_contain_text("DN-API-7")
    screenshot(page, "receiving-list")

    page.locator('[data-action="new-delivery"]').click()
    page.select_option("#id_supplier", str(world.supplier.pk))
    page.fill("#id_number", "DN-BROWSER-1")
    page.select_option("#id_receiving_location", str(world.warehouse.pk))
    page.get_by_role("button", name="开始扫描").click()
    field = page.locator("#draft-code")
    expect(field).to_be_focused()

    result = page.locator("form[data-scan-primary] [data-scan-result]")
    scan(page, field, gs1_udi(product.udi_di, serial="B1", lot="LB"))
    expect(result).to_have_class(re.compile(r"\bok\b"))
    expect(result).to_contain_text("第 1 行")
    expect(result).to_contain_text("可以验收")
    expect(page.locator('#draft-lines tr[data-key="1"] [data-verdict="accept"]')).to_be_visible()
    expect(field).to_have_value("")

    page.fill("#draft-price", "1100")
    scan(page, field, gs1_udi(product.udi_di, serial="B2", lot="LB"))
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result).to_contain_text("价格 1100.00 与协议价 1200.00 不一致")
    expect(page.locator('#draft-lines tr[data-key="2"]')).to_have_class(re.compile("line-rejected"))
    page.fill("#draft-price", "")

    scan(page, field, gs1_udi("06901234567892", serial="B3"))
    expect(result).to_contain_text("本院目录中没有 UDI-DI 为 06901234567892 的产品")
    expect(page.locator("[data-count-of='#draft-lines']")).to_have_text("3")
    settled_screenshot(page, "receiving-draft")

    page.locator('[data-action="record"]').click()
    note = DeliveryNote.objects.get(number="DN-BROWSER-1")
    expect(page).to_have_url(re.compile(rf"/receiving/{note.pk}/$"))
    expect(page.locator(".message.success")).to_contain_text("DN-BROWSER-1")

    # This station's scanner sends "|" for GS: the same unit scanned there is read right.
    station = Device.objects.create(hospital=hospital, code="WS-RCV", name="验收台", kind=Device.Kind.WEDGE_SCANNER,
                                    config={"gs_substitute": "|"})
    page.goto("/station/")
    page.select_option("#id_station", str(station.pk))
    page.get_by_role("button", name="保存").click()
    page.goto(f"/receiving/{note.pk}/")
    check = page.locator("#note-scan")
    scan(page, check, gs1_udi(product.udi_di, serial="B1", lot="LB").replace("\x1d", "|"))
    note_result = page.locator("form[data-note-rows] [data-scan-result]")
    expect(note_result).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator('#note-lines tr[data-line="1"]')).to_have_class(re.compile(r"\bscanned\b"))
    scan(page, check, gs1_udi(product.udi_di, serial="B2", lot="LB"))
    expect(note_result).to_have_class(re.compile(r"\bfail\b"))
    expect(note_result).to_contain_text("将被拒收")
    expect(page.locator("[data-checked-count]")).to_have_text("3")  # each was scanned into the draft
    scan(page, check, gs1_udi(product.udi_di, serial="NOT-ON-NOTE"))
    expect(note_result).to_contain_text("扫描的条码不在送货单 DN-BROWSER-1 的任何一行上")
    settled_screenshot(page, "receiving-note")

    page.locator('[data-action="finish"]').click()  # the review, then the decision
    page.locator('[data-action="decide"]').click()
    expect(page.locator(".message.success")).to_contain_text("1 行通过，2 行拒收")
    expect(page.locator('[data-decision="ACCEPTED"]')).to_have_count(1)
    expect(page.locator('[data-decision="REJECTED"]')).to_have_count(2)
    screenshot(page, "receiving-result")
    assert Unit.objects.get(serial="B1").status == "IN_STOCK"


@pytest.fixture
def fake_his():
    with FakeHis() as his:
        yield his


def test_consume_against_an_encounter_see_the_charge_reach_the_his_then_refund(page, world, cath_lab_store,
                                                                            fake_his, settings):
    settings.SPD_HIS_CHARGE_URL = fake_his.url
    settings.SPD_HIS_TOKEN = ""
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   units=[world.units["SN-A1"]], idempotency_key="to-cath")
    page.set_viewport_size({"width": 1024, "height": 1366})  # a tablet, upright
    login(page, "nurse")
    page.locator('nav.mainnav [data-menu="distribution"] > summary').click()  # its menu
    page.get_by_role("link", name="使用登记", exact=True).click()
    expect(page.locator("#id_department")).to_have_value(str(world.cabinet.department.pk))
    page.fill("#id_encounter", "ZY20261123777")
    page.locator("details.context-more summary").click()  # surgery and doctor, when there are any
    page.fill("#id_surgery_name", "PCI")
    page.fill("#id_doctor", "D0042")
    page.locator('[data-action="set-context"]').click()
    expect(page.locator(".current-context h2")).to_contain_text("ZY20261123777")

    scan(page, page.locator("#use-scan"), gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"))
    result = page.locator(".current-context [data-scan-result]")
    expect(result).to_have_class(re.compile(r"\bok\b"))
    expect(result).to_contain_text("¥1,200.00")
    use = Consumption.objects.get(unit__serial="SN-A1")
    row = page.locator(f'#uses tr[data-consumption="{use.pk}"]')
    expect(row).to_contain_text("ZY20261123777")
    expect(row.locator("[data-his-status]")).to_have_text("等待推送")

    scan(page, page.locator("#use-scan"), gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A"))
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result).to_contain_text("不在心内科导管室：请先移库到本科室")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    settled_screenshot(page, "bedside")

    report = deliver_due_charges()  # the HIS relay (and the world's earlier failed charge with it)
    assert report.delivered >= 1, report
    page.reload()
    expect(row.locator("[data-his-status]")).to_have_text("HIS 已接收")

    row.locator('[data-action="refund"]').click()
    expect(page.locator("h1")).to_have_text("退费")
    page.select_option("#id_reason_code", "NOT_USED")
    screenshot(page, "bedside-refund")
    page.locator('button[data-action="refund"]').click()
    expect(page.locator('[data-section="review"]')).to_contain_text("未用于患者")
    assert Consumption.objects.get(pk=use.pk).refunded_at is None  # reviewed, not done
    screenshot(page, "bedside-refund-review")
    page.locator('button[data-action="confirm"]').click()
    expect(page.locator(".message.success")).to_contain_text("已退费")
    expect(page).to_have_url(re.compile(r"/use/\?.*encounter=ZY20261123777"))
    refunded = page.locator(f'#uses tr[data-consumption="{use.pk}"]')
    expect(refunded.locator('[data-charge-kind="REFUND"] [data-his-status]')).to_have_text("等待推送")
    assert Unit.objects.get(serial="SN-A1").location == cath_lab_store
    assert ChargeDelivery.objects.filter(charge__consumption=use).count() == 2


def test_transfer_by_scanning_into_a_list(page, world, cath_lab_store):
    login(page, "keeper")
    page.locator('nav.mainnav [data-menu="inventory"] > summary').click()  # its menu
    page.get_by_role("link", name="移库退货").click()
    field = page.locator("#move-scan")
    expect(field).to_be_focused()
    result = page.locator("form[data-scan-form][data-rows] [data-scan-result]")
    for number, code in enumerate((gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"),
                                   gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A"),
                                   gs1_udi(world.consigned_product.udi_di, serial="SN-C1")), start=1):
        scan(page, field, code)
        expect(page.locator("#move-lines tr[data-key]")).to_have_count(number)  # the answer is back
        expect(result).to_have_class(re.compile(r"\bok\b"))
    scan(page, field, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"))
    expect(result).to_have_class(re.compile(r"\bfail\b"))
    expect(result).to_contain_text("耗材 SN-A1 已在列表中")
    page.locator(f'#move-lines tr[data-unit="{world.units["SN-C1"].pk}"] [data-remove-row]').click()
    expect(page.locator("[data-count-of='#move-lines']")).to_have_text("2")
    page.select_option("#id_to_location", str(cath_lab_store.pk))
    page.fill("#id_note", "导管室补货")
    settled_screenshot(page, "moves")

    page.locator('[data-action="submit-move"]').click()
    expect(page.locator('[data-field="where-to"]')).to_have_text("导管室二级库")
    assert not StockOrder.objects.filter(kind="TRANSFER", note="导管室补货").exists()  # reviewed, not done
    page.locator('[data-action="confirm"]').click()
    order = StockOrder.objects.get(kind="TRANSFER", note="导管室补货")
    expect(page).to_have_url(re.compile(rf"/moves/orders/{order.pk}/$"))
    expect(page.locator('[data-field="destination"]')).to_have_text("导管室二级库")
    expect(page.locator("table[data-table=order-movements] tbody tr")).to_have_count(2)
    screenshot(page, "moves-order")
    assert set(Unit.objects.filter(serial__in=["SN-A1", "SN-A2"]).values_list("location", flat=True)) == {
        cath_lab_store.pk}
    assert Unit.objects.get(serial="SN-C1").location == world.warehouse


def test_cabinets_show_state_contents_sessions_and_overdue_takes(page, world):
    stocked_cabinet = stock_the_cabinet(world)
    login(page, "nurse")
    page.locator('nav.mainnav [data-menu="devices"] > summary').click()  # its menu
    page.get_by_role("link", name="智能柜", exact=True).click()
    card = page.locator(f'[data-cabinet="{stocked_cabinet.pk}"]')
    expect(card.locator("[data-device-state]")).to_have_attribute("data-device-state", "offline")
    expect(card.locator('[data-count="taken"]')).to_have_text("1")
    expect(card).to_contain_text("1 件超时")
    screenshot(page, "cabinets")
    card.get_by_role("link", name=stocked_cabinet.name).click()
    expect(page.locator('[data-section="overdue"]')).to_contain_text("SN-A1")
    expect(page.locator("table[data-table=contents] tbody tr")).to_have_count(2)
    expect(page.locator("table[data-table=sessions] tbody tr")).to_have_count(2)
    expect(page.locator('[data-tag="unknown"]')).to_contain_text("E2801160600002FFFFFFFFFF")
    expect(page.locator('[data-tag="misplaced"]')).to_contain_text("中心库")
    screenshot(page, "cabinet-detail")
