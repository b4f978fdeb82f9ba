"""The reconciliation pages (进销存对账) through Django's test client: the runs by period and their
filters, who may read and who may reconcile, scoping, a run's summary, findings, stock table and
chart, and downloads that are the stored bytes with the SHA-256 shown. Runs on SQLite and PostgreSQL.

The books (`books`): the `world` hospital's use of SN-A3 today on ENCOUNTER is not billed (漏收);
the HIS bills an encounter with no use today (虚记); three days ago a stent was used in the
cath-lab store and billed, settled the day after; five days ago the HIS billed something never used.
"""
import contextlib
import datetime
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from inventory.actors import Actor
from inventory.models import Finding, ReconciliationRun
from inventory.selectors.charts import daily_use_and_billing
from inventory.selectors.flow_table import flow_table_rows
from inventory.services.consumption import ClinicalContext, consume_unit
from inventory.services.his import import_settlement_lines
from inventory.services.reconciliation import run_reconciliation
from inventory.services.stock import transfer_stock
from inventory.web.charts import compact_money, use_and_billing_chart
from inventory.web.views import reconciliation as pages
from tests import factories
from tests.conftest import stock_units
from tests.web.conftest import ENCOUNTER

pytestmark = pytest.mark.django_db

LIST = reverse("web:reconciliation")
START = reverse("web:reconciliation-start")
ONE_DAY = datetime.timedelta(days=1)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def local(day: datetime.date, hour: int = 10) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=timezone.get_default_timezone())


@dataclass
class Books:
    today: datetime.date
    run: ReconciliationRun  # today's, current, with a 漏收 and a 虚记
    foreign_run: ReconciliationRun  # the other hospital's


@contextlib.contextmanager
def services_clock():
    """Set what `timezone.now()` answers (the services read it) with `at(moment)`; the real clock
    is back at the end. Model defaults such as Movement.recorded_at keep the real time."""
    moment: dict = {}
    real_now = timezone.now
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: moment.get("now") or real_now())
        yield lambda when: moment.update(now=when)


def use_stents_in_the_past(world, store, uses: Sequence[tuple[int, bool]], *, prefix: str) -> None:
    """Stents received and put into `store` the day before the first use, then used there on the
    given days (days ago, oldest first), each billed by the HIS the next morning when `billed`."""
    today = timezone.localdate()
    keeper, nurse = Actor(user=world.keeper), Actor(user=world.nurse)
    lines = []
    with services_clock() as at:
        at(local(today - (uses[0][0] + 1) * ONE_DAY, 8))
        serials = [f"{prefix}-{index:02d}" for index in range(len(uses))]
        units = stock_units(keeper, world.supplier, world.warehouse, world.product, serials, lot=f"LOT-{prefix}")
        transfer_stock(actor=keeper, hospital=store.hospital, to_location=store, units=units,
                       idempotency_key=f"{prefix}-to-store")
        for index, ((days_ago, billed), unit) in enumerate(zip(uses, units, strict=True)):
            used_at = local(today - days_ago * ONE_DAY, 11) + datetime.timedelta(minutes=index)
            at(used_at)
            encounter = f"ZY{prefix}{index:05d}"
            consume_unit(actor=nurse, hospital=store.hospital, unit=unit, idempotency_key=f"{prefix}-use-{index}",
                         context=ClinicalContext(encounter=encounter, department=store.department,
                                                 occurred_at=used_at))
            if billed:
                lines.append({
                    "his_line_id": f"{prefix}-{index}", "encounter": encounter,
                    "his_charge_code": world.product.his_charge_code, "quantity": 1, "unit_price": "1200.00",
                    "amount": "1200.00", "settled_at": local(today - (days_ago - 1) * ONE_DAY, 9).isoformat(),
                })
    if lines:
        import_settlement_lines(hospital=store.hospital, batch=f"HIS-{prefix}", rows=lines)


def build_books(world, hospital, other_hospital, store) -> Books:
    today = timezone.localdate()
    use_stents_in_the_past(world, store, [(3, True)], prefix="P")
    import_settlement_lines(hospital=hospital, batch="HIS-TEST", rows=[
        {"his_line_id": "L-GHOST", "encounter": "ZY-GHOST", "his_charge_code": "HIS-GHOST", "quantity": 2,
         "unit_price": "250.00", "amount": "500.00", "settled_at": local(today, 9).isoformat()},
        {"his_line_id": "L-OLD", "encounter": "ZY-OLD", "his_charge_code": "HIS-OLD", "quantity": 1,
         "unit_price": "80.00", "amount": "80.00", "settled_at": local(today - 5 * ONE_DAY, 15).isoformat()},
    ])
    run = run_reconciliation(hospital=hospital, period_start=today, period_end=today)
    foreign = run_reconciliation(hospital=other_hospital, period_start=today, period_end=today)
    return Books(today=today, run=run, foreign_run=foreign)


@pytest.fixture
def books(world, hospital, other_hospital, cath_lab_store) -> Books:
    return build_books(world, hospital, other_hospital, cath_lab_store)


@pytest.fixture
def admin(hospital):
    return factories.UserFactory(username="admin", hospital=hospital, roles=["admin"])


def client_for(user, language: str | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if language:
        client.cookies["django_language"] = language
    return client


def text(response) -> str:
    return response.content.decode()


def run_url(run: ReconciliationRun) -> str:
    return reverse("web:reconciliation-run", args=[run.pk])


def shown_hash(page: str, name: str) -> str:
    return re.search(rf'data-sha256="{name}">([0-9a-f]{{64}})<', page).group(1)


# --- the list -------------------------------------------------------------------------------------


def test_the_runs_are_listed_newest_period_first_with_findings_by_type(books, world, operator):
    earlier = run_reconciliation(hospital=books.run.hospital, period_start=books.today - 3 * ONE_DAY,
                                 period_end=books.today - 3 * ONE_DAY, requested_by=operator)

    response = client_for(world.auditor).get(LIST)

    assert response.status_code == 200
    assert [run.pk for run in response.context["page"]] == [books.run.pk, earlier.pk]
    page = text(response)
    row = page[page.index(f'data-run="{books.run.pk}"'):page.index(f'data-run="{earlier.pk}"')]
    assert books.today.isoformat() in row and 'data-findings="2"' in row and "¥1,700.00" in row
    assert 'data-kind="USED_NOT_BILLED"' in row and "¥1,200.00" in row
    assert 'data-kind="BILLED_NOT_USED"' in row and "¥500.00" in row
    assert "定时任务" in row  # the nightly schedule's run: requested by nobody
    assert f'href="{run_url(books.run)}?kind=USED_NOT_BILLED#findings"' in row
    assert "operator" in page[page.index(f'data-run="{earlier.pk}"'):]
    assert str(books.foreign_run.pk) not in re.findall(r'data-run="(\d+)"', page)


def test_the_list_filters_by_period_status_and_current(books, operator):
    hospital = books.run.hospital
    week_ago = books.today - 7 * ONE_DAY
    old = run_reconciliation(hospital=hospital, period_start=week_ago, period_end=week_ago)
    replaced = run_reconciliation(hospital=hospital, period_start=week_ago, period_end=week_ago, rerun=True,
                                  requested_by=operator)
    failed = ReconciliationRun.objects.create(hospital=hospital, period_start=week_ago - ONE_DAY,
                                              period_end=week_ago - ONE_DAY, status="FAILED", error="disk full")
    auditor = client_for(factories.UserFactory(hospital=hospital, roles=["auditor"]))

    def listed(**query) -> list[int]:
        return [run.pk for run in auditor.get(LIST, query).context["page"]]

    assert listed() == [books.run.pk, replaced.pk, old.pk, failed.pk]
    assert listed(current="yes") == [books.run.pk, replaced.pk, failed.pk]
    assert listed(current="no") == [old.pk]
    assert listed(status="FAILED") == [failed.pk]
    assert listed(period_from=(week_ago + ONE_DAY).isoformat()) == [books.run.pk]
    assert listed(period_to=week_ago.isoformat()) == [replaced.pk, old.pk, failed.pk]
    page = text(auditor.get(LIST, {"current": "no"}))
    assert "已被取代" in page and f'href="{run_url(replaced)}"' in page  # the old one links to its re-run
    bad = auditor.get(LIST, {"period_from": "not-a-date"})
    assert bad.status_code == 200 and 'class="problems"' in text(bad) and len(bad.context["page"]) == 4


def test_the_list_reads_the_same_number_of_queries_whatever_the_number_of_runs(books, world, operator):
    client = client_for(world.auditor)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST).status_code == 200
        return len(captured)

    few = queries()
    for days_ago in range(1, 6):
        day = books.today - days_ago * ONE_DAY
        run_reconciliation(hospital=books.run.hospital, period_start=day, period_end=day, requested_by=operator)
    run_reconciliation(hospital=books.run.hospital, period_start=books.today, period_end=books.today, rerun=True)
    assert queries() == few


# --- who may do what ------------------------------------------------------------------------------


def test_auditors_read_every_run_and_download_but_reconcile_nothing(books, world):
    auditor = client_for(world.auditor)

    assert 'data-form="run"' not in text(auditor.get(LIST))
    page = auditor.get(run_url(books.run))
    assert page.status_code == 200 and 'data-form="rerun"' not in text(page)
    assert auditor.get(reverse("web:reconciliation-report", args=[books.run.pk, "pdf"])).status_code == 200

    assert auditor.post(START, {"period_start": "2025-03-01"}).status_code == 403
    assert auditor.post(reverse("web:reconciliation-rerun", args=[books.run.pk])).status_code == 403
    assert ReconciliationRun.objects.filter(hospital=books.run.hospital).count() == 1


def test_warehouse_keepers_read_and_nurses_do_not_see_reconciliation(books, world):
    keeper = client_for(world.keeper)
    assert keeper.get(run_url(books.run)).status_code == 200
    assert 'data-form="run"' not in text(keeper.get(LIST))
    assert keeper.post(START, {"period_start": "2025-03-01"}).status_code == 403

    nurse = client_for(world.nurse)
    for url in (LIST, run_url(books.run), reverse("web:reconciliation-report", args=[books.run.pk, "csv"])):
        assert nurse.get(url).status_code == 403


def test_a_stranger_is_sent_to_sign_in(books, client):
    for url in (LIST, run_url(books.run), reverse("web:reconciliation-report", args=[books.run.pk, "xlsx"])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("web:login"))


def test_another_hospitals_run_does_not_exist(books, world, admin):
    theirs = books.foreign_run
    for user in (world.auditor, admin):
        client = client_for(user)
        assert client.get(run_url(theirs)).status_code == 404
        for report_format in ("csv", "xlsx", "pdf"):
            assert client.get(reverse("web:reconciliation-report", args=[theirs.pk, report_format])).status_code == 404
    assert client_for(admin).post(reverse("web:reconciliation-rerun", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_current


# --- reconciling from the pages -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_an_operator_or_admin_reconciles_a_day_and_gets_its_run_again_when_asking_again(books, role, request):
    user = request.getfixturevalue(role)
    client = client_for(user)
    day = books.today - 3 * ONE_DAY
    assert 'data-form="run"' in text(client.get(LIST))

    made = client.post(START, {"period_start": day.isoformat()}, follow=True)

    run = ReconciliationRun.objects.get(hospital=user.hospital, period_start=day, period_end=day)
    assert made.redirect_chain == [(run_url(run), 302)]
    assert (run.status, run.requested_by, run.is_current) == ("DONE", user, True)
    assert "已完成对账" in text(made) and 'data-form="rerun"' in text(made)

    again = client.post(START, {"period_start": day.isoformat(), "period_end": day.isoformat()}, follow=True)
    assert again.redirect_chain == [(run_url(run), 302)]
    assert "该期间已对账" in text(again)
    assert ReconciliationRun.objects.filter(hospital=user.hospital, period_start=day).count() == 1


def test_a_range_of_days_is_one_run(books, operator):
    first, last = books.today - 10 * ONE_DAY, books.today - ONE_DAY
    client_for(operator).post(START, {"period_start": first.isoformat(), "period_end": last.isoformat()})

    run = ReconciliationRun.objects.get(hospital=operator.hospital, period_start=first)
    assert run.period_end == last and run.status == "DONE"


def test_a_rerun_from_the_run_page_supersedes_it_and_keeps_it(books, operator):
    client = client_for(operator)
    runs = ReconciliationRun.objects.count()

    # The run page's button opens a review; neither it nor a post without the confirmation re-runs.
    review = client.get(reverse("web:reconciliation-rerun", args=[books.run.pk]))
    assert review.status_code == 200 and 'data-section="review"' in text(review)
    assert 'name="step" value="confirm"' in text(review)
    unconfirmed = client.post(reverse("web:reconciliation-rerun", args=[books.run.pk]))
    assert unconfirmed.status_code == 200 and ReconciliationRun.objects.count() == runs

    response = client.post(reverse("web:reconciliation-rerun", args=[books.run.pk]), {"step": "confirm"}, follow=True)

    later = ReconciliationRun.objects.get(hospital=books.run.hospital, period_start=books.today, is_current=True)
    assert later.pk != books.run.pk and later.supersedes_id == books.run.pk and later.requested_by == operator
    assert response.redirect_chain == [(run_url(later), 302)]
    assert f'href="{run_url(books.run)}"' in text(response)  # "replaces run #…"
    old = text(client.get(run_url(books.run)))
    assert 'data-note="superseded"' in old and f'href="{run_url(later)}"' in old
    assert later.summary["data_sha256"] == books.run.summary["data_sha256"]


def test_a_bad_period_is_refused_with_the_reasons_and_the_form_kept(books, operator, settings):
    client = client_for(operator)

    backwards = client.post(START, {"period_start": "2025-03-02", "period_end": "2025-03-01"})
    assert backwards.status_code == 400
    assert 'class="problems"' in text(backwards) and "最后一天早于第一天" in text(backwards)
    assert 'value="2025-03-02"' in text(backwards)

    settings.SPD_RECON_MAX_PERIOD_DAYS = 31
    too_long = client.post(START, {"period_start": "2025-01-01", "period_end": "2025-03-01"})
    assert too_long.status_code == 400
    problems = too_long.context["problems"]
    assert [problem.code for problem in problems] == ["PERIOD_TOO_LONG"]
    assert "期间最长 31 天" in text(too_long) and "31" in problems[0].detail  # the service's own refusal
    assert "请求无效" not in text(too_long) and "a run covers" not in text(too_long)
    assert not ReconciliationRun.objects.filter(period_start__year=2025).exists()

    missing = client.post(START, {})
    assert missing.status_code == 400 and "第一天" in text(missing)


def test_reconciling_needs_a_user_of_a_hospital(books):
    alliance_admin = factories.UserFactory(hospital=None, roles=["admin"], is_superuser=True)
    client = client_for(alliance_admin)

    assert client.get(run_url(books.foreign_run)).status_code == 200  # reads every hospital
    assert "县中医院" in text(client.get(LIST))
    response = client.post(START, {"period_start": "2025-03-01"})
    assert response.status_code == 400 and "绑定医院" in text(response)


# --- a run ----------------------------------------------------------------------------------------


def test_the_run_page_shows_the_summary_findings_by_type_and_each_finding(books, world):
    response = client_for(world.auditor).get(run_url(books.run))
    page = text(response)

    totals = books.run.summary["totals"]
    assert totals["consumed"] == {"quantity": 1, "amount": "1200.00"}
    assert totals["billed"] == {"quantity": 2, "amount": "500.00"}
    consumed = page[page.index('data-total="consumed"'):page.index('data-total="billed"')]
    assert "¥1,200.00" in consumed
    assert "¥500.00" in page[page.index('data-total="billed"'):page.index('data-total="findings"')]
    kinds = {count.kind: (count.count, count.amount) for count in response.context["kinds"]}
    assert kinds["USED_NOT_BILLED"] == (1, Decimal("1200.00"))
    assert kinds["BILLED_NOT_USED"] == (1, Decimal("500.00"))
    assert sum(count for count, _ in kinds.values()) == 2 and len(kinds) == len(Finding.Kind.values)
    findings = list(response.context["findings"].page)
    assert [(f.kind, f.encounter) for f in findings] == [("USED_NOT_BILLED", ENCOUNTER), ("BILLED_NOT_USED", "ZY-GHOST")]
    assert world.product.name in page[page.index('data-table="findings"'):]
    assert "已使用未计费（漏收）" in page and "就诊 ZY-GHOST HIS 收费" in page
    assert "consumptions" in page  # the evidence rows
    assert 'data-sha256="data"' in page and books.run.summary["data_sha256"] in page


def test_findings_filter_by_type_and_page_with_the_filter_kept(books, world, monkeypatch):
    client = client_for(world.auditor)
    url = run_url(books.run)

    only = client.get(url, {"kind": "BILLED_NOT_USED"})
    assert [(f.encounter, f.number) for f in only.context["findings"].page] == [("ZY-GHOST", 2)]  # as in the reports
    assert 'data-findings-count="1"' in text(only)
    none = client.get(url, {"kind": "EXPIRED_IN_STOCK"})
    assert list(none.context["findings"].page) == [] and "没有该类型的发现" in text(none)
    unknown = client.get(url, {"kind": "NONSENSE"})
    assert len(unknown.context["findings"].page) == 2 and 'class="problems"' in text(unknown)

    monkeypatch.setattr(pages, "FINDINGS_PER_PAGE", 1)
    first = client.get(url)
    pager = first.context["findings"]
    assert [f.kind for f in pager.page] == ["USED_NOT_BILLED"] and pager.previous_url == ""
    assert pager.next_url == "?page=2#findings"
    second = client.get(url, {"page": 2, "rows": 1})
    assert [f.kind for f in second.context["findings"].page] == ["BILLED_NOT_USED"]
    assert second.context["findings"].previous_url == "?page=1&rows=1#findings"


def test_the_stock_table_of_the_run_pages_on_its_own(books, world, monkeypatch):
    rows = flow_table_rows(books.run)
    assert len(rows) >= 4  # the cabinet's SN-A3; the warehouse's stents, consigned stent and infusion sets
    monkeypatch.setattr(pages, "STOCK_ROWS_PER_PAGE", 2)
    client = client_for(world.auditor)

    first = client.get(run_url(books.run), {"kind": "USED_NOT_BILLED"})
    stock = first.context["stock"]
    assert list(stock.page) == rows[:2]
    assert stock.next_url == "?kind=USED_NOT_BILLED&rows=2#stock-table"
    second = client.get(run_url(books.run), {"kind": "USED_NOT_BILLED", "rows": 2})
    assert list(second.context["stock"].page) == rows[2:4]
    assert [f.kind for f in second.context["findings"].page] == ["USED_NOT_BILLED"]
    infusion_sets = next(row for row in rows if row["location_code"] == world.warehouse.code
                         and row["product_code"] == world.lot_product.internal_code)
    assert (infusion_sets["opening"], infusion_sets["received"], infusion_sets["closing"]) == (0, 20, 20)
    assert all(row["opening"] >= 0 for row in rows)
    assert 'data-table="stock"' in text(first)


def test_a_failed_run_shows_its_error_and_no_reports(world, hospital):
    failed = ReconciliationRun.objects.create(hospital=hospital, period_start=datetime.date(2025, 3, 1),
                                              period_end=datetime.date(2025, 3, 1), status="FAILED",
                                              error="RuntimeError: disk full")

    page = text(client_for(world.auditor).get(run_url(failed)))

    assert 'data-note="failed"' in page and "RuntimeError: disk full" in page
    assert "没有报告" in page and 'data-download=' not in page


def test_a_done_run_whose_reports_are_being_rendered_says_so(world, hospital):
    rendering = ReconciliationRun.objects.create(hospital=hospital, period_start=datetime.date(2025, 3, 1),
                                                 period_end=datetime.date(2025, 3, 1), status="DONE")

    page = text(client_for(world.auditor).get(run_url(rendering)))

    assert "data-reports-pending" in page and "报告正在生成" in page
    assert 'data-download=' not in page and "没有报告" not in page


# --- downloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("report_format", ["csv", "xlsx", "pdf"])
def test_each_download_is_the_stored_file_with_the_hash_shown_on_the_page(books, world, report_format):
    client = client_for(world.auditor)
    page = text(client.get(run_url(books.run)))
    url = reverse("web:reconciliation-report", args=[books.run.pk, report_format])
    assert f'href="{url}"' in page

    response = client.get(url)

    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    with getattr(books.run, f"report_{report_format}").open("rb") as stored:
        assert data == stored.read()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == getattr(books.run, f"{report_format}_sha256") == response["X-Content-SHA256"]
    assert shown_hash(page, report_format) == digest
    assert response["Content-Disposition"].startswith("attachment")
    assert f"reconciliation-{books.run.pk}-" in response["Content-Disposition"]
    if report_format == "xlsx":
        assert load_workbook(io.BytesIO(data)).sheetnames == ["汇总", "发现", "进销存"]


def test_the_page_says_how_to_verify_a_printed_copy(books, world):
    page = text(client_for(world.auditor).get(run_url(books.run)))
    note = page[page.index('data-note="verify"'):]
    assert "certutil -hashfile" in note and "sha256sum" in note
    assert "打印件" in note and f"#{books.run.pk}" in note


def test_an_unknown_or_missing_report_is_a_404(books, world):
    client = client_for(world.auditor)
    assert client.get(f"/reconciliation/{books.run.pk}/report.docx").status_code == 404
    books.run.report_pdf.storage.delete(books.run.report_pdf.name)
    assert client.get(reverse("web:reconciliation-report", args=[books.run.pk, "pdf"])).status_code == 404


# --- the chart ------------------------------------------------------------------------------------


def test_daily_use_and_billing_counts_billing_on_the_day_of_the_use_in_two_queries(
    books, hospital, django_assert_num_queries
):
    first = books.today - 29 * ONE_DAY
    with django_assert_num_queries(2):
        days = daily_use_and_billing(hospital, first, books.today, grace=datetime.timedelta(days=2))

    assert [day.day for day in days] == [first + n * ONE_DAY for n in range(30)]
    by_day = {day.day: (day.used, day.billed) for day in days if day.used or day.billed}
    assert by_day == {
        books.today - 5 * ONE_DAY: (Decimal("0.00"), Decimal("80.00")),
        books.today - 3 * ONE_DAY: (Decimal("1200.00"), Decimal("1200.00")),  # settled the day after
        books.today: (Decimal("1200.00"), Decimal("500.00")),
    }
    totals = books.run.summary["totals"]
    assert (str(days[-1].used), str(days[-1].billed)) == (totals["consumed"]["amount"], totals["billed"]["amount"])


def test_the_run_page_draws_thirty_days_of_use_and_billing_with_the_run_shaded(books, world):
    response = client_for(world.auditor).get(run_url(books.run))
    chart = response.context["chart"]
    page = text(response)

    assert (chart.first_day, chart.last_day) == (books.today - 29 * ONE_DAY, books.today)
    assert chart.bin_days == 1 and len(chart.used.bars) == len(chart.billed.bars) == 30
    assert chart.band is not None and chart.band[0] > chart.used.bars[-2].x  # only the last day is shaded
    today_used, today_billed = chart.used.bars[-1], chart.billed.bars[-1]
    assert today_used.height > today_billed.height > 0  # ¥1,200 used, ¥500 billed
    assert chart.x_ticks[-1].label == f"{books.today:%m-%d}"
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert svg.count("<rect") >= 60 and "患者使用" in svg and "HIS 收费" in svg and "本次对账期间" in svg
    assert re.search(r'<text[^>]*>¥\d', svg)  # amounts on the axis
    assert f"{books.today:%Y-%m-%d} 患者使用 ¥1,200.00" in svg  # each bar says what it is
    assert "script" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    table = page[page.index('data-table="chart"'):]
    assert f'data-day="{books.today:%Y-%m-%d}" class="in-run"' in table and "¥700.00" in table


def test_a_long_run_is_drawn_in_weeks_over_its_own_period(books, operator):
    first = books.today - 89 * ONE_DAY
    run = run_reconciliation(hospital=books.run.hospital, period_start=first, period_end=books.today,
                             requested_by=operator)

    response = client_for(operator).get(run_url(run))

    chart = response.context["chart"]
    assert (chart.first_day, chart.last_day, chart.bin_days) == (first, books.today, 7)
    assert len(chart.used.bars) == 13  # 90 days: twelve weeks back from today and a short first one
    assert chart.days[-1].day == books.today - 6 * ONE_DAY and chart.days[0].last == first + 5 * ONE_DAY
    assert (chart.days[-1].used, chart.days[-1].billed) == (Decimal("2400.00"), Decimal("1780.00"))  # the week summed
    assert len(chart.x_ticks) <= 10 and chart.band is None  # the whole chart is the run: nothing to set apart
    assert [item.key for item in chart.legend] == ["used", "billed"]
    assert 'data-note="weekly"' in text(response)


def test_the_run_page_and_its_chart_in_english(books, world):
    page = text(client_for(world.auditor, "en").get(run_url(books.run)))

    assert "Used but not billed (漏收)" in page and "Findings by type" in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "Used on patients" in svg and "Billed by the HIS" in svg and "This run&#x27;s period" in svg
    assert "How to verify a report" in page


def test_axis_labels_are_short_in_either_language():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert [compact_money(v) for v in (0, 2500, 12000, 3_000_000, 250_000_000)] == [
            "¥0", "¥2500", "¥1.2万", "¥300万", "¥2.5亿"]
    with translation.override("en"):
        assert [compact_money(v) for v in (0, 2500, 12000, 3_000_000, -500)] == ["¥0", "¥2.5k", "¥12k", "¥3M", "-¥500"]


def test_an_empty_range_and_a_negative_day_still_make_a_chart():
    from inventory.selectors.charts import DayAmounts

    day = datetime.date(2025, 3, 1)
    empty = use_and_billing_chart([DayAmounts(day, Decimal(0), Decimal(0))], labels=("u", "b", "r"))
    assert empty.empty and [tick.label for tick in empty.y_ticks][0] == "¥0" and empty.legend[-1].key == "billed"

    refund = use_and_billing_chart(
        [DayAmounts(day, Decimal("300"), Decimal("-120")), DayAmounts(day + ONE_DAY, Decimal(0), Decimal("90"))],
        labels=("u", "b", "r"), shaded=(day + ONE_DAY, day + ONE_DAY),
    )
    assert refund.y_ticks[0].label.startswith("-¥") and refund.top <= refund.zero <= refund.bottom
    negative = refund.billed.bars[0]
    assert negative.y == refund.zero and negative.height > 0  # drawn below the zero line
    assert [row.in_band for row in refund.days] == [False, True]


def test_one_spike_is_clipped_and_labelled_so_that_it_does_not_flatten_the_other_days():
    from inventory.selectors.charts import DayAmounts

    day = datetime.date(2025, 3, 1)
    days = [DayAmounts(day + n * ONE_DAY, Decimal(100 + n), Decimal(100)) for n in range(10)]
    days[4] = DayAmounts(days[4].day, Decimal("90000"), Decimal(100))

    chart = use_and_billing_chart(days, labels=("u", "b", "r"))

    assert chart.clipped_at is not None and chart.clipped_at < 1000
    assert [bar.value for bar in chart.clipped_bars] == [Decimal("90000")]
    spike, ordinary = chart.used.bars[4], chart.used.bars[3]
    assert spike.y == chart.top and ordinary.height > (chart.bottom - chart.top) / 5  # the others stay readable
    assert not spike.label_before and chart.used.bars[-1].label_before is True  # its amount stays on the chart
    unclipped = use_and_billing_chart(days[:4] + days[5:], labels=("u", "b", "r"))
    assert unclipped.clipped_at is None and not unclipped.clipped_bars
    few = use_and_billing_chart(days[3:5], labels=("u", "b", "r"))  # two days: nothing to flatten
    assert few.clipped_at is None


def test_the_difference_chart_shows_used_minus_billed_up_and_down():
    from inventory.selectors.charts import DayAmounts
    from inventory.web.charts import difference_chart, findings_chart

    day = datetime.date(2025, 3, 1)
    chart = difference_chart([DayAmounts(day, Decimal(300), Decimal(100)), DayAmounts(day + ONE_DAY, Decimal(0),
                                                                                      Decimal(50)),
                              DayAmounts(day + 2 * ONE_DAY, Decimal(10), Decimal(10))])

    up, down, level = chart.bars
    assert (up.value, down.value, level.value) == (Decimal(200), Decimal(-50), Decimal(0))
    assert up.y + up.height == chart.zero and down.y == chart.zero and down.height > 0 and level.height == 0
    assert not chart.empty and chart.bin_days == 1
    kinds = findings_chart([("A", "a", 1, Decimal("10")), ("B", "b", 0, Decimal("0")), ("C", "c", 2, Decimal("40"))])
    assert [bar.kind for bar in kinds.bars] == ["C", "A"] and kinds.bars[0].width > kinds.bars[1].width
    assert findings_chart([("B", "b", 0, Decimal("0"))]) is None


def test_the_run_page_draws_the_difference_and_the_findings_by_type(books, world):
    page = text(client_for(world.auditor).get(run_url(books.run)))

    difference = page[page.index('data-chart="difference"'):]
    difference = difference[:difference.index("</svg>")]
    assert f'data-day="{books.today:%Y-%m-%d}"' in difference and "¥700.00" in difference
    findings = page[page.index('data-chart="findings"'):]
    findings = findings[:findings.index("</svg>")]
    assert 'data-kind="USED_NOT_BILLED"' in findings and 'data-kind="BILLED_NOT_USED"' in findings
