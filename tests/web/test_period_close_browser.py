"""The monthly close in a real browser: an operator reads the months and their blockers, closes last
month through its review, and downloads its 月报, whose SHA-256 is the one the page shows; an
auditor reads the months but has no close button."""
import datetime
import hashlib

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import ClosedPeriod
from inventory.services.reconciliation import run_reconciliation
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_an_operator_closes_last_month_after_its_review(page, world, hospital):
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - datetime.timedelta(days=1)).replace(day=1)
    login(page, "operator")
    page.goto("/periods/")
    current = page.locator(f'tr[data-month="{this_month:%Y-%m}"]')
    expect(current).to_have_attribute("data-state", "open")
    expect(current.locator('[data-blocker="MONTH_NOT_OVER"]')).to_be_visible()
    expect(page.locator(f'tr[data-month="{last_month:%Y-%m}"] [data-blocker="DAYS_NOT_RECONCILED"]')).to_be_visible()

    run_reconciliation(hospital=hospital, period_start=last_month, period_end=this_month - datetime.timedelta(days=1))
    page.reload()
    row = page.locator(f'tr[data-month="{last_month:%Y-%m}"]')
    expect(row.locator('[data-blocker="none"]')).to_be_visible()
    row.locator('[data-action="close"]').click()
    expect(page.locator('[data-section="review"]')).to_be_visible()
    assert not ClosedPeriod.objects.exists()  # not yet
    screenshot(page, "period-close-review")
    page.locator('[data-action="confirm"]').click()

    expect(page.locator(".message.success")).to_be_visible()
    expect(row).to_have_attribute("data-state", "closed")
    period = ClosedPeriod.objects.get(hospital=hospital, month=last_month)
    expect(row.locator("code.hash")).to_contain_text(period.csv_sha256[:16])
    with page.expect_download() as download:
        row.locator('[data-action="report"]').click()
    with open(download.value.path(), "rb") as handle:
        data = handle.read()
    assert hashlib.sha256(data).hexdigest() == period.csv_sha256
    screenshot(page, "period-close-list")


def test_an_auditor_reads_the_months_without_a_close_button(page, world):
    login(page, "auditor")
    page.goto("/periods/")
    expect(page.locator("table[data-table=months] tbody tr")).to_have_count(12)
    expect(page.locator('[data-action="close"]')).to_have_count(0)
