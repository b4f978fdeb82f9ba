"""The second pass in a real browser (chromium through Playwright) against the live server on
PostgreSQL: a stock export runs in the background while its page shows it queued, then running
with its percentage, then ready with a download, updating by itself (jobs.js polling the JSON
status); an auditor records a finding's disposition from the run page and sees the open count drop.
"""
import csv
import io
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from inventory.models import BackgroundJob
from inventory.services import background
from inventory.web.export import export_stock
from tests.web.conftest import login, screenshot
from tests.web.test_reconciliation_pages import build_books

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
HALFWAY = threading.Event()
GO_ON = threading.Event()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def export_in_two_halves(job, progress):
    """The real stock export, held at 30 % until the test has seen the page say so."""
    progress(30)
    HALFWAY.set()
    assert GO_ON.wait(20)
    return export_stock(job, progress)


def run_like_a_worker(job_pk: int) -> None:
    try:
        background.run_queued_job(job_pk)
    finally:
        connection.close()


def test_a_stock_export_shows_its_progress_and_ends_with_a_download(page, world, monkeypatch):
    HALFWAY.clear()
    GO_ON.clear()
    queued = []
    monkeypatch.setattr(background, "tasks_run_in_process", lambda: False)  # as with a broker
    monkeypatch.setattr(background, "queue_task", lambda name, job_pk: queued.append(job_pk))
    monkeypatch.setitem(background.WORK, BackgroundJob.Kind.STOCK_EXPORT, f"{__name__}.export_in_two_halves")
    login(page, "keeper")
    page.goto("/stock/?status=ANY")

    page.locator('[data-form="export"] [data-export="csv"]').click()

    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    state = page.locator("[data-job-status-url]")
    expect(state.locator("[data-job-status]")).to_have_text("排队中")
    expect(state.locator("[data-job-download]")).to_be_hidden()
    worker = threading.Thread(target=run_like_a_worker, args=(queued[0],))
    worker.start()
    try:
        assert HALFWAY.wait(20)
        expect(state.locator("[data-job-percent]")).to_have_text("30 %")  # updated without a reload
        expect(state.locator("[data-job-status]")).to_have_text("运行中")
        assert state.locator("progress").evaluate("bar => bar.value") == 30
        screenshot(page, "job-running")
    finally:
        GO_ON.set()
        worker.join(30)
    expect(state.locator("[data-job-status]")).to_have_text("已完成")
    download_link = state.locator("[data-job-download]")
    expect(download_link).to_be_visible()
    expect(state.locator("progress")).to_be_hidden()
    screenshot(page, "job-ready")
    with page.expect_download() as download_info:
        download_link.click()
    download = download_info.value
    assert re.fullmatch(r"stock-units-\d{8}-\d{4}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig") as handle:
        serials = {row[5] for row in list(csv.reader(io.StringIO(handle.read())))[1:]}
    assert {"SN-A1", "SN-A2", "SN-A3"} <= serials


def test_an_auditor_records_a_disposition_from_the_run_page(page, world, hospital, other_hospital, cath_lab_store):
    books = build_books(world, hospital, other_hospital, cath_lab_store)
    unbilled = books.run.findings.get(kind="USED_NOT_BILLED")
    login(page, "auditor")
    page.goto(f"/reconciliation/{books.run.pk}/")
    expect(page.locator("[data-open-count]")).to_have_attribute("data-open-count", "2")

    row = page.locator(f"#finding-{unbilled.pk}")
    row.locator(".record-disposition summary").click()
    row.locator('select[name="outcome"]').select_option("EXPLAINED")
    row.locator('textarea[name="note"]').fill("The ward billed it on the next day's list")
    row.get_by_role("button", name="登记").click()

    expect(page).to_have_url(re.compile(rf"#finding-{unbilled.pk}$"))
    expect(page.locator(".message.success")).to_contain_text("已说明")
    row = page.locator(f"#finding-{unbilled.pk}")
    expect(row).to_have_attribute("data-outcome", "EXPLAINED")
    expect(row.locator(".disposition-note")).to_have_text("The ward billed it on the next day's list")
    expect(page.locator("[data-open-count]")).to_have_attribute("data-open-count", "1")
    screenshot(page, "reconciliation-disposition")
