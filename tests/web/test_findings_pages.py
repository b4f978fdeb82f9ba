"""The reconciliation run page's second pass, through Django's test client: auditors record what
each finding turned out to be, the page counts the open ones, sorts them by amount and filters the
进销存 table; exports (the stock page's, the findings with their dispositions) and reconciliations
run as background jobs whose page, JSON status and download belong to their requester."""
import csv
import io
import re

import pytest
from django.urls import reverse

from inventory.models import BackgroundJob, FindingDisposition, ReconciliationRun
from inventory.selectors.flow_table import flow_table_rows
from inventory.services import background
from tests import factories
from tests.web.test_reconciliation_pages import ONE_DAY, START, build_books, client_for, run_url, text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def books(world, hospital, other_hospital, cath_lab_store):
    return build_books(world, hospital, other_hospital, cath_lab_store)


def dispose_url(finding) -> str:
    return reverse("web:reconciliation-finding-disposition", args=[finding.pk])


def test_an_auditor_records_a_disposition_from_the_run_page_and_the_open_count_drops(books, world):
    client = client_for(world.auditor)
    page = text(client.get(run_url(books.run)))
    assert 'data-open-count="2"' in page and page.count('data-form="disposition"') == 2
    unbilled = books.run.findings.get(kind="USED_NOT_BILLED")
    back = f"{run_url(books.run)}?sort=amount"

    response = client.post(dispose_url(unbilled), {"outcome": "EXPLAINED", "note": "billed on 03-02 by the ward",
                                                   "next": back})

    assert response.status_code == 302 and response["Location"] == f"{back}#finding-{unbilled.pk}"
    page = text(client.get(back))
    assert 'data-open-count="1"' in page
    row = page[page.index(f'id="finding-{unbilled.pk}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-outcome="EXPLAINED"' in row and "已说明" in row and "billed on 03-02 by the ward" in row

    client.post(dispose_url(unbilled), {"outcome": "CONFIRMED", "note": "no bill after all"})
    page = text(client.get(run_url(books.run)))
    row = page[page.index(f'id="finding-{unbilled.pk}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-history="2"' in row and "billed on 03-02 by the ward" in row and "已被取代" in row
    assert FindingDisposition.objects.filter(finding=unbilled).count() == 2


def test_a_bad_disposition_says_why_and_records_nothing(books, world):
    client = client_for(world.auditor)
    finding = books.run.findings.first()

    response = client.post(dispose_url(finding), {"outcome": "CONFIRMED", "note": "  "}, follow=True)

    assert "处理意见需要填写说明" in text(response) and not FindingDisposition.objects.exists()


def test_a_warehouse_keeper_reads_dispositions_but_records_none(books, world):
    client = client_for(world.keeper)
    finding = books.run.findings.first()

    assert 'data-form="disposition"' not in text(client.get(run_url(books.run)))
    assert client.post(dispose_url(finding), {"outcome": "CONFIRMED", "note": "x"}).status_code == 403


def test_another_hospitals_finding_is_a_404(books, world):
    foreign = factories.UserFactory(hospital=books.foreign_run.hospital, roles=["auditor"])
    finding = books.run.findings.first()

    assert client_for(foreign).post(dispose_url(finding), {"outcome": "CONFIRMED", "note": "x"}).status_code == 404


def test_findings_sort_by_amount_and_filter_open_or_disposed(books, world):
    client = client_for(world.auditor)
    ghost = books.run.findings.get(kind="BILLED_NOT_USED")  # ¥500, found after the ¥1,200 one
    unbilled = books.run.findings.get(kind="USED_NOT_BILLED")

    def shown(**query) -> list[int]:
        return [finding.pk for finding in client.get(run_url(books.run), query).context["findings"].page]

    assert shown(sort="amount") == [unbilled.pk, ghost.pk]
    client.post(dispose_url(unbilled), {"outcome": "CONFIRMED", "note": "not billed"})
    assert shown(state="open") == [ghost.pk]
    assert shown(state="disposed") == [unbilled.pk]


def test_the_stock_table_filters_by_product_and_location(books, world):
    client = client_for(world.auditor)
    rows = flow_table_rows(books.run)
    location = rows[0]["location_code"]

    by_location = client.get(run_url(books.run), {"location": location.lower()}).context["stock"].page
    assert {row["location_code"] for row in by_location} == {location}
    by_product = client.get(run_url(books.run), {"product": world.product.name[:3]}).context["stock"].page
    assert by_product and {row["product_code"] for row in by_product} == {world.product.internal_code}
    none = client.get(run_url(books.run), {"product": "no-such-product"})
    assert len(none.context["stock"].page) == 0 and "没有该产品和库位的记录" in text(none)


def test_the_findings_export_is_a_job_whose_page_status_and_download_are_the_requesters(books, world):
    client = client_for(world.auditor)
    finding = books.run.findings.get(kind="USED_NOT_BILLED")
    client.post(dispose_url(finding), {"outcome": "CONFIRMED", "note": "not billed"})

    response = client.post(reverse("web:reconciliation-findings-export", args=[books.run.pk]), {"format": "csv"})

    job = BackgroundJob.objects.get(kind="FINDINGS_EXPORT")
    assert response.status_code == 302 and response["Location"] == reverse("web:job", args=[job.pk])
    status = client.get(reverse("web:job-status", args=[job.pk])).json()
    assert (status["status"], status["progress"], status["finished"]) == ("READY", 100, True)
    download = client.get(status["download_url"])
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert any(row[12] == "确认" and row[13] == "not billed" for row in rows[1:])
    page = text(client.get(reverse("web:job", args=[job.pk])))
    assert 'data-job-status-url="' in page and "web/jobs.js" in page and 'data-status="READY"' in page
    other = client_for(world.keeper)
    assert other.get(reverse("web:job-status", args=[job.pk])).status_code == 404
    assert other.get(reverse("web:job-download", args=[job.pk])).status_code == 404


def test_the_stock_page_exports_in_the_background(world):
    client = client_for(world.keeper)
    page = text(client.get(reverse("web:stock"), {"consignment": "no"}))
    assert 'data-form="export"' in page and 'name="query" value="consignment=no"' in page

    response = client.post(reverse("web:stock-export"), {"what": "units", "format": "xlsx", "query": "consignment=no"})

    job = BackgroundJob.objects.get()
    assert response["Location"] == reverse("web:job", args=[job.pk])
    assert (job.status, job.requested_by, job.params["what"], job.result_name[-5:]) == (
        "READY", world.keeper, "units", ".xlsx")
    assert client.post(reverse("web:stock-export"), {"what": "passwords", "format": "csv"}).status_code == 400


def test_a_reconciliation_with_a_broker_is_followed_on_its_job_page(books, operator, monkeypatch):
    monkeypatch.setattr(background, "tasks_run_in_process", lambda: False)
    client = client_for(operator)
    day = books.today - 4 * ONE_DAY

    response = client.post(START, {"period_start": day.isoformat()})

    job = BackgroundJob.objects.get(kind="RECONCILIATION")
    assert job.status == "QUEUED" and response["Location"] == reverse("web:job", args=[job.pk])
    page = text(client.get(response["Location"]))
    assert 'data-status="QUEUED"' in page and "排队" in page
    background.run_queued_job(job.pk)  # what the worker does
    status = client.get(reverse("web:job-status", args=[job.pk])).json()
    run = ReconciliationRun.objects.get(hospital=operator.hospital, period_start=day)
    assert status["status"] == "READY" and status["result_url"] == run_url(run)


def test_reconciling_days_the_his_is_still_settling_warns(books, operator):
    client = client_for(operator)
    page = text(client.get(reverse("web:reconciliation")))
    assert 'data-note="unsettled"' in page and "web/reconciliation.js" in page

    response = client.post(START, {"period_start": books.today.isoformat()}, follow=True)

    assert re.search(r"HIS 可能仍在结算本期间的 \d+ 天", text(response))


def test_a_rerun_can_go_through_the_background_job_too(books, operator, rf):
    from django.contrib.messages.storage.fallback import FallbackStorage

    from inventory.web.views.reconciliation import reconcile_in_background

    request = rf.post("/")
    request.user = operator
    request.session = {}
    request._messages = FallbackStorage(request)
    period = (books.run.period_start, books.run.period_end)

    response = reconcile_in_background(request, hospital=books.run.hospital, period=period, before=books.run.pk,
                                       rerun=True)

    later = ReconciliationRun.objects.get(hospital=books.run.hospital, period_start=books.today, is_current=True)
    assert later.supersedes_id == books.run.pk and response["Location"] == run_url(later)


def test_a_run_page_waiting_for_its_reports_polls_their_status(world, hospital, books):
    rendering = ReconciliationRun.objects.create(hospital=hospital, period_start=books.today - 20 * ONE_DAY,
                                                 period_end=books.today - 20 * ONE_DAY, status="DONE")
    client = client_for(world.auditor)
    status_url = reverse("web:reconciliation-reports-status", args=[rendering.pk])

    page = text(client.get(run_url(rendering)))

    assert f'data-status-url="{status_url}"' in page and "web/reconciliation.js" in page
    assert client.get(status_url).json() == {"status": "DONE", "ready": False}
    assert client.get(reverse("web:reconciliation-reports-status", args=[books.run.pk])).json()["ready"] is True
    foreign = reverse("web:reconciliation-reports-status", args=[books.foreign_run.pk])
    assert client.get(foreign).status_code == 404
