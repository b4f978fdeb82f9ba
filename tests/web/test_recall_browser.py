"""A recall in a real browser: from the trace page of one unit an operator opens a recall of its lot,
sees every affected item and the patient it was used on, is refused the close while stock is
unhandled, quarantines and returns the stock by scan, records the patient's follow-up and closes it."""
import hashlib

import pytest
from playwright.sync_api import expect

from inventory.models import Recall, Unit
from tests import factories
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_open_a_recall_from_a_unit_trace_and_work_it_to_closure(page, world, hospital):
    factories.LocationFactory(hospital=hospital, code="QUAR", name="隔离区", kind="QUARANTINE")
    unit = world.units["SN-A1"]
    login(page, "operator")
    page.goto(f"/units/{unit.pk}/")
    page.locator('[data-link="open-recall"]').click()
    form = page.locator('[data-form="open-recall"]')
    expect(form.locator('input[name="lot"]')).to_have_value("LOT-A")
    form.locator('textarea[name="reason"]').fill("制造商通知：包装密封不良")
    form.locator('select[name="source"]').select_option("MANUFACTURER")
    form.locator('[data-action="open-recall"]').click()

    recall = Recall.objects.get()
    expect(page.locator("[data-recall-status]")).to_have_attribute("data-recall-status", "OPEN")
    stock = page.locator("table[data-table=recall-stock] tbody tr")
    expect(stock).to_have_count(2)
    used = page.locator("table[data-table=recall-used] tbody tr")
    expect(used).to_have_count(1)
    expect(used.first).to_have_attribute("data-encounter", world.consumption.encounter)
    expect(page.locator("[data-located]")).to_have_attribute("data-located", "0")

    page.locator('[data-action="close-recall"]').click()
    expect(page.locator('.problems [data-code="RECALL_NOT_CLOSABLE"]')).to_be_visible()

    scan = page.locator('[data-form="recall-scan"]')
    scan.locator('input[name="code"]').fill(Unit.objects.get(serial="SN-A1").udi_raw)
    scan.locator('select[name="action"]').select_option("quarantine")
    scan.locator('[data-action="recall-scan"]').click()
    expect(page.locator('tr[data-serial="SN-A1"]')).to_have_attribute("data-handling", "QUARANTINED")
    scan = page.locator('[data-form="recall-scan"]')
    scan.locator('input[name="code"]').fill(Unit.objects.get(serial="SN-A2").udi_raw)
    scan.locator('select[name="action"]').select_option("return")
    scan.locator('[data-action="recall-scan"]').click()
    expect(page.locator('tr[data-serial="SN-A2"]')).to_have_attribute("data-handling", "RETURNED")
    expect(page.locator("[data-located]")).to_have_attribute("data-located", "2")

    follow = page.locator('[data-form="follow-up"]')
    follow.locator('select[name="follow_up"]').select_option("NOTIFIED")
    follow.locator('input[name="note"]').fill("已电话通知患者复查")
    follow.locator('[data-action="follow-up"]').click()
    expect(page.locator("table[data-table=recall-used] tbody tr").first).to_have_attribute("data-follow-up", "NOTIFIED")
    screenshot(page, "recall-worked")

    with page.expect_download() as download:
        page.locator('[data-export="csv"]').click()
    with open(download.value.path(), "rb") as handle:
        data = handle.read()
    assert world.consumption.encounter in data.decode()
    assert hashlib.sha256(data).hexdigest()

    page.locator('[data-action="close-recall"]').click()
    expect(page.locator("[data-recall-status]")).to_have_attribute("data-recall-status", "CLOSED")
    recall.refresh_from_db()
    assert recall.status == Recall.Status.CLOSED
    assert Unit.objects.get(serial="SN-A2").status == "RETURNED_TO_SUPPLIER"
