"""The consumable review page in a real browser: an auditor opens it from the menu, switches to the
doctor dimension, sees the chart, its table and the strip plot (test-artifacts/review-zh.png)."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import Consumption
from tests.web.conftest import login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_an_auditor_reviews_cost_by_doctor(page, world):
    hospital, store = world.warehouse.hospital, world.cabinet
    today = timezone.localdate()
    for n, (doctor, price) in enumerate([("王医生", "1000"), ("王医生", "1200"), ("李医生", "9000")]):
        Consumption.objects.create(
            hospital=hospital, product=world.product,
            quantity=1, location=store, encounter=f"E{n}", surgery_id=f"S{n}", surgery_name="PCI", doctor=doctor,
            department=store.department, unit_price=Decimal(price),
            occurred_at=timezone.make_aware(datetime.datetime.combine(today.replace(day=1), datetime.time(9))),
        )
    login(page, "auditor")
    page.locator('nav.mainnav [data-menu="analysis"] > summary').click()  # the menu 分析与追溯
    page.locator('nav a[href="/review/"]').first.click()
    expect(page.locator('svg[data-chart="review"]')).to_be_visible()
    page.select_option("#id_dimension", "doctor")
    page.locator("form.filters button[type=submit]").click()
    table = page.locator("table[data-table=review] tbody")
    expect(table).to_contain_text("李医生")
    expect(table.locator("tr").first).to_contain_text("9,000")
    expect(page.locator('svg[data-chart="strip"] circle')).to_have_count(3)
    screenshot(page, "review-zh")


def test_a_reviewer_sees_the_trend_and_downloads_the_review_pdf_made_in_the_background(page, world):
    from tests import factories

    factories.UserFactory(username="reviewer", hospital=world.warehouse.hospital, roles=["reviewer"])
    hospital, store = world.warehouse.hospital, world.cabinet
    today = timezone.localdate()
    for n, price in enumerate(["500", "700"]):
        Consumption.objects.create(
            hospital=hospital, product=world.product, quantity=1, location=store, encounter=f"E{n}",
            doctor="王医生", department=store.department, unit_price=Decimal(price),
            occurred_at=timezone.make_aware(datetime.datetime.combine(today.replace(day=1), datetime.time(9))),
        )
    login(page, "reviewer")
    expect(page.locator('nav a[href="/reconciliation/"]')).to_have_count(0)
    page.locator('nav.mainnav [data-menu="analysis"] > summary').click()  # the menu 分析与追溯
    page.locator('nav a[href="/review/"]').first.click()
    expect(page.locator('svg[data-chart="trend"] polyline, svg[data-chart="trend"] circle').first).to_be_visible()
    expect(page.locator("table[data-table=trend] tbody")).to_contain_text("2,400")  # with the world's own use
    screenshot(page, "review-trend-zh")
    page.locator('form[data-form="review-export"] button[value="pdf"]').click()
    page.wait_for_url("**/jobs/*/")
    download_link = page.locator("[data-job-download]")
    expect(download_link).to_be_visible(timeout=15_000)
    with page.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename.endswith(".pdf")
    screenshot(page, "review-job-zh")
