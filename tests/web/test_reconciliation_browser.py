"""The reconciliation pages in a real browser (Debian's chromium through Playwright) against the live
server on PostgreSQL: an auditor opens a run, reads its summary, findings and chart, filters the
findings by type and downloads the XLSX report, whose SHA-256 must be the one the page shows; an
operator reconciles a day and re-runs it. Screenshots of the list and of a run go to test-artifacts/.
"""
import hashlib
import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import ReconciliationRun
from tests.web.conftest import ARTIFACTS, login, screenshot
from tests.web.test_reconciliation_pages import ONE_DAY, build_books, use_stents_in_the_past

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Days before today with stents used in the cath-lab store, oldest first; two were never billed (漏收).
USE_DAYS = (23, 22, 20, 20, 18, 16, 15, 15, 13, 11, 10, 8, 6, 6, 4, 2)
NOT_BILLED = {8, 13}  # which uses (their index)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def add_history(world, store) -> None:
    """Three weeks of stents used in the cath-lab store, most billed the next morning."""
    use_stents_in_the_past(
        world, store, [(days_ago, index not in NOT_BILLED) for index, days_ago in enumerate(USE_DAYS)], prefix="H"
    )


def test_an_auditor_reads_a_run_filters_its_findings_and_checks_the_downloaded_xlsx(
    page, world, hospital, other_hospital, cath_lab_store
):
    add_history(world, cath_lab_store)
    books = build_books(world, hospital, other_hospital, cath_lab_store)
    run = books.run

    login(page, "auditor")
    page.locator('nav.mainnav [data-menu="counts"] > summary').click()  # 盘点与月结
    page.locator("nav.mainnav").get_by_role("link", name="对账").click()
    expect(page.locator("h1")).to_contain_text("对账")
    row = page.locator(f'[data-run="{run.pk}"]')
    expect(row).to_contain_text(books.today.isoformat())
    expect(row.locator("[data-findings]")).to_have_text("2")
    expect(row.locator('[data-kind="USED_NOT_BILLED"]')).to_contain_text("¥1,200.00")
    expect(page.locator('[data-form="run"]')).to_have_count(0)  # auditors read only
    screenshot(page, "reconciliation-list")

    row.get_by_role("link", name=books.today.isoformat()).click()
    expect(page).to_have_url(re.compile(rf"/reconciliation/{run.pk}/$"))
    expect(page.locator("h1")).to_contain_text(books.today.isoformat())
    expect(page.locator('[data-total="consumed"]')).to_contain_text("¥1,200.00")
    expect(page.locator('[data-total="billed"]')).to_contain_text("¥500.00")
    expect(page.locator('[data-total="findings"]')).to_contain_text("¥1,700.00")
    findings = page.locator("table[data-table=findings] tbody tr")
    expect(findings).to_have_count(2)
    chart = page.locator('[data-chart="use-billing"]')
    expect(chart.locator("svg")).to_be_visible()
    expect(chart.locator('[data-series="used"] rect')).to_have_count(30)
    expect(chart.locator("svg .legend")).to_contain_text("HIS 收费")
    screenshot(page, "reconciliation-run")
    chart.screenshot(path=str(ARTIFACTS / "reconciliation-chart.png"))

    page.select_option("#id_kind", "BILLED_NOT_USED")
    page.locator("#findings").get_by_role("button", name="筛选").click()
    expect(page).to_have_url(re.compile(r"kind=BILLED_NOT_USED(&[^#]*)?#findings$"))  # with the order and state
    expect(findings).to_have_count(1)
    expect(findings.first).to_contain_text("ZY-GHOST")
    expect(findings.first).to_contain_text("¥500.00")

    shown = page.locator('[data-sha256="xlsx"]').inner_text().strip()
    with page.expect_download() as download_info:
        page.locator('[data-download="xlsx"]').click()
    download = download_info.value
    assert download.suggested_filename == f"reconciliation-{run.pk}-{books.today:%Y%m%d}-{books.today:%Y%m%d}.xlsx"
    with open(download.path(), "rb") as downloaded:
        assert hashlib.sha256(downloaded.read()).hexdigest() == shown == run.xlsx_sha256


def test_an_operator_reconciles_a_day_and_re_runs_it(page, world, hospital, operator):
    day = timezone.localdate() - 3 * ONE_DAY
    login(page, "operator")
    page.goto("/reconciliation/")
    page.fill("#id_period_start", day.isoformat())
    page.locator('[data-action="run"]').click()

    first = ReconciliationRun.objects.get(hospital=hospital, period_start=day)
    expect(page).to_have_url(re.compile(rf"/reconciliation/{first.pk}/$"))
    expect(page.locator(".message.success")).to_contain_text("已完成对账")
    expect(page.locator('[data-run-status="DONE"]')).to_be_visible()

    page.locator('[data-action="rerun"]').click()
    expect(page.locator('[data-section="review"]')).to_be_visible()
    assert ReconciliationRun.objects.filter(hospital=hospital, period_start=day).count() == 1  # not yet
    screenshot(page, "reconciliation-rerun-review")
    page.locator('[data-action="confirm"]').click()
    expect(page.locator(".message.success")).to_be_visible()
    second = ReconciliationRun.objects.get(hospital=hospital, period_start=day, is_current=True)
    assert second.pk != first.pk and second.supersedes_id == first.pk
    expect(page).to_have_url(re.compile(rf"/reconciliation/{second.pk}/$"))
    page.goto(f"/reconciliation/{first.pk}/")
    expect(page.locator('[data-note="superseded"]')).to_contain_text(f"#{second.pk}")
    page.goto("/reconciliation/?current=no")
    expect(page.locator("table[data-table=runs] tbody tr")).to_have_count(1)


def test_the_run_page_in_english_on_a_tablet(page, world, hospital, other_hospital, cath_lab_store):
    add_history(world, cath_lab_store)
    books = build_books(world, hospital, other_hospital, cath_lab_store)
    page.set_viewport_size({"width": 820, "height": 1180})
    login(page, "auditor")
    page.goto(f"/reconciliation/{books.run.pk}/")
    page.locator("[data-language-switch]").click()
    expect(page.locator('[data-section="kinds"]')).to_contain_text("Used but not billed")
    expect(page.locator('[data-chart="use-billing"] svg .legend')).to_contain_text("Billed by the HIS")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "reconciliation-run-en-tablet")
    assert Decimal(books.run.summary["findings"]["amount"]) == Decimal("1700.00")
