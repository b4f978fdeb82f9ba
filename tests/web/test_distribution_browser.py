"""The nurse → keeper → nurse loop in Chromium: a nurse asks for 5 infusion sets on her phone, the
keeper picks them on a tablet — FEFO splits the line over two lots, and he finds only 4 — and
dispatches; the nurse receives the delivery. The requisition stays open for the missing one."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import Delivery, LotBalance, Movement, PickedItem, PickList, Requisition
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests.factories import gs1_udi
from tests.web.conftest import login, screenshot
from tests.web.test_nurse_browser import PHONE, fits_the_width
from tests.web.test_operations_browser import scan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TABLET = {"width": 1024, "height": 768}


@pytest.fixture
def early_lot(world):
    """Lot EARLY (3, expires in 100 days) beside the world's lot L-2026 (20, in 500 days)."""
    actor = Actor(user=world.keeper)
    note = receive_delivery_note(
        actor=actor, hospital=world.warehouse.hospital, supplier=world.supplier, number="DN-EARLY",
        receiving_location=world.warehouse, idempotency_key="rcv-early",
        lines=[LineInput(Decimal("3.50"), product=world.lot_product, lot="EARLY",
                         expiry=timezone.localdate() + datetime.timedelta(days=100), quantity=3)],
    )
    accept_delivery_note(actor=actor, note=note, idempotency_key="acc-early")
    return LotBalance.objects.get(lot="EARLY", location=world.warehouse)


def chinese(label) -> str:
    with translation.override("zh-hans"):
        return str(label)


def lot_label(product, balance):
    return gs1_udi(product.udi_di, lot=balance.lot, expiry=balance.expiry)


def test_nurse_requests_keeper_picks_fefo_over_two_lots_partly_and_nurse_receives(
    page, chromium, live_server, world, cath_lab_store, early_lot
):
    product = world.lot_product
    later = LotBalance.objects.get(lot="L-2026", location=world.warehouse)

    # 1. The nurse, on her phone, asks for 5.
    page.set_viewport_size(PHONE)
    login(page, "nurse")
    page.goto("/requisitions/")
    page.locator('[data-action="new-requisition"]').click()
    page.wait_for_url("**/requisitions/*/")
    page.locator("#id_quantity").fill("5")
    scan(page, page.locator("#id_code"), product.internal_code)
    expect(page.locator("table, .lines").first).to_contain_text(product.name)
    assert fits_the_width(page)
    page.locator('[data-action="submit"]').click()
    requisition = Requisition.objects.get(department=cath_lab_store.department)
    expect(page.locator("body")).to_contain_text(requisition.number)
    requisition.refresh_from_db()
    assert requisition.status == Requisition.Status.APPROVED
    screenshot(page, "distribution-nurse-requested-phone")

    # 2. The keeper, on a tablet, makes the pick list: FEFO proposes EARLY 3 + L-2026 2.
    keeper_context = chromium.get().new_context(base_url=live_server.url, locale="zh-CN",
                                                timezone_id="Asia/Shanghai", viewport=TABLET)
    keeper_context.set_default_timeout(15_000)
    keeper = keeper_context.new_page()
    login(keeper, "keeper")
    keeper.goto("/picking/")
    line = requisition.lines.get()
    expect(keeper.locator(f'[data-requisition-line="{line.pk}"]')).to_be_visible()
    keeper.select_option("#source_location", str(world.warehouse.pk))
    keeper.locator('[data-action="create-pick-list"]').click()
    keeper.wait_for_url("**/picking/*/")
    expect(keeper.locator('[data-to-pick="EARLY"]')).to_contain_text("3")
    expect(keeper.locator('[data-to-pick="L-2026"]')).to_contain_text("2")
    screenshot(keeper, "distribution-pick-list-tablet")

    # A later lot than proposed is refused, and says why.
    keeper.locator('[data-field="quantity"]').fill("3")
    scan(keeper, keeper.locator("#pick-scan"), lot_label(product, later))
    expect(keeper.locator("#content [data-scan-result]")).to_contain_text("EARLY")
    assert not PickedItem.objects.exists()

    # EARLY in full, then only 1 of L-2026: the shelf is short.
    keeper.locator('[data-field="quantity"]').fill("")
    scan(keeper, keeper.locator("#pick-scan"), lot_label(product, early_lot))
    expect(keeper.locator('[data-picked="EARLY"]')).to_contain_text("3")
    keeper.locator('[data-field="quantity"]').fill("1")
    scan(keeper, keeper.locator("#pick-scan"), lot_label(product, later))
    expect(keeper.locator('[data-picked="L-2026"]')).to_contain_text("1")
    expect(keeper.locator('[data-field="picked"]')).to_contain_text("4 / 5")
    keeper.locator('[data-action="dispatch"]').click()
    expect(keeper.locator('[data-field="status"]')).to_contain_text(chinese(PickList.Status.DISPATCHED.label))
    delivery = Delivery.objects.get()
    expect(keeper.locator(f'[data-delivery="{delivery.number}"]')).to_be_visible()
    pdf = keeper.request.get(f"/picking/{delivery.pick_list_id}/pick-list.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    keeper_context.close()

    # 3. The nurse receives the 4 in one step.
    page.goto("/deliveries/")
    page.locator(f'[data-delivery="{delivery.number}"]').click()
    expect(page.locator('[data-item]')).to_have_count(2)
    assert fits_the_width(page)
    screenshot(page, "distribution-receipt-phone")
    page.locator('[data-action="receive"]').click()
    expect(page.locator('[data-field="status"]')).to_contain_text(chinese(Delivery.Status.RECEIVED.label))

    # The ledger shows both legs, the store has 3 + 1, and 1 is still open on the requisition.
    transit = delivery.in_transit_location
    legs = sorted((m.lot, m.quantity, m.from_location_id, m.to_location_id) for m in Movement.objects.filter(kind="TRANSFER", product=product))
    assert legs == sorted([
        ("EARLY", 3, world.warehouse.pk, transit.pk), ("L-2026", 1, world.warehouse.pk, transit.pk),
        ("EARLY", 3, transit.pk, cath_lab_store.pk), ("L-2026", 1, transit.pk, cath_lab_store.pk),
    ])
    line.refresh_from_db()
    assert (line.picked_quantity, line.dispatched_quantity, line.received_quantity, line.open_quantity) == (4, 4, 4, 1)
    requisition.refresh_from_db()
    assert requisition.status == Requisition.Status.PICKING
