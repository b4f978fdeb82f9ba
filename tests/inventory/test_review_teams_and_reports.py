"""Issue 17, the rest of the review: the 医保办/医务处 reviewer role, clinical teams (诊疗组) on uses
and in the review, monthly trends, the review PDF/CSV/XLSX made by a background job, and the pages
for watched items, the revenue import and red lines (docs/review.md)."""
import csv
import datetime
import io
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import (
    Alert,
    BackgroundJob,
    ClinicalTeam,
    ClinicalTeamMember,
    Consumption,
    DepartmentRevenue,
    RatioRedLine,
    WatchedItem,
)
from inventory.selectors.review import Period, monthly_trend, review
from inventory.services.consumption import ClinicalContext, team_at_use
from inventory.services.review_report import build_review_report, render_review_pdf
from inventory.services.stock import transfer_stock
from inventory.web.charts import line_chart
from tests import factories
from tests.conftest import api_client_for, stock_units
from tests.factories import gs1_udi
from tests.pdf_text import shown_strings

pytestmark = pytest.mark.django_db


def at(day: datetime.date, hour: int = 10) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def department(cath_lab_store):
    return cath_lab_store.department


@pytest.fixture
def teams(hospital, department):
    one = ClinicalTeam.objects.create(hospital=hospital, department=department, code="T1", name="心内一组")
    two = ClinicalTeam.objects.create(hospital=hospital, department=department, code="T2", name="心内二组")
    # D7 was in team one until the end of last month, in team two since
    first_of_month = timezone.localdate().replace(day=1)
    ClinicalTeamMember.objects.create(team=one, doctor="D7", since=datetime.date(2020, 1, 1),
                                      until=first_of_month - datetime.timedelta(days=1))
    ClinicalTeamMember.objects.create(team=two, doctor="D7", since=first_of_month)
    return one, two


@pytest.fixture
def units_in_store(keeper_actor, supplier, warehouse, product, cath_lab_store):
    units = stock_units(keeper_actor, supplier, warehouse, product, ["CT1", "CT2", "CT3", "CT4"])
    transfer_stock(actor=keeper_actor, hospital=warehouse.hospital, to_location=cath_lab_store, units=units,
                   idempotency_key="to-store")
    return units


def consume(client, department, serial, product, key, **body):
    payload = {"encounter": "ZY20261123001", "department": department.pk, "idempotency_key": key,
               "udi": gs1_udi(product.udi_di, serial=serial), "surgery_id": "OP-1", "surgery_name": "PCI", **body}
    return client.post("/api/v1/consumptions/", payload, format="json")


def user(hospital, role, name=None):
    return factories.UserFactory(username=name or f"{role}-{hospital.code}", hospital=hospital, roles=[role])


# --- clinical teams ---------------------------------------------------------------------------------

def test_a_use_is_recorded_under_the_doctors_team_of_the_day_or_the_team_named(
    hospital, keeper, department, teams, units_in_store, product
):
    one, two = teams
    api = api_client_for(keeper)
    today = consume(api, department, "CT1", product, "u1", doctor="D7")
    named = consume(api, department, "CT3", product, "u3", doctor="D7", clinical_team=one.pk)
    nobody = consume(api, department, "CT4", product, "u4", doctor="D99")
    assert [r.status_code for r in (today, named, nobody)] == [201] * 3
    assert [r.data["clinical_team"] for r in (today, named, nobody)] == [two.pk, one.pk, None]
    # a use entered for a day of last month is the team D7 was in then
    last_month = timezone.now().replace(day=1) - datetime.timedelta(days=2)
    context = ClinicalContext(encounter="ZY1", department=department, doctor="D7")
    assert team_at_use(hospital=hospital, context=context, used_at=last_month) == one.pk
    assert team_at_use(hospital=hospital, context=context, used_at=timezone.now()) == two.pk

    period = Period(timezone.localdate() - datetime.timedelta(days=40), timezone.localdate())
    rows = {row.label: row for row in review(hospital=hospital, dimension="clinical_team", period=period)}
    assert {label: row.uses for label, row in rows.items()} == {"心内一组": 1, "心内二组": 1, "未分组": 1}


def test_another_hospitals_team_cannot_be_named_on_a_use(
    hospital, other_hospital, keeper, department, units_in_store, product
):
    theirs = ClinicalTeam.objects.create(hospital=other_hospital,
                                         department=factories.DepartmentFactory(hospital=other_hospital),
                                         code="X1", name="外院组")
    response = consume(api_client_for(keeper), department, "CT1", product, "u1", clinical_team=theirs.pk)
    assert response.status_code == 400 and "clinical_team" in json.dumps(response.data)
    assert Consumption.objects.count() == 0


def test_finding_the_doctors_team_costs_no_query_more_than_a_use_without_a_doctor(
    hospital, keeper, department, teams, units_in_store, product
):
    api = api_client_for(keeper)
    consume(api, department, "CT1", product, "warm-up", doctor="")  # caches (content types, groups) filled

    def queries(serial, key, **body):
        with CaptureQueriesContext(connection) as captured:
            assert consume(api, department, serial, product, key, **body).status_code == 201
        return len(captured)

    # The team is read in the statement that locks the unit.
    assert queries("CT3", "with", doctor="D7") == queries("CT2", "without", doctor="")


# --- trends, the PDF, the background job -------------------------------------------------------------

@pytest.fixture
def uses(hospital, warehouse, department):
    stent = factories.ProductFactory(hospital=hospital, name="支架", category="血管介入", is_high_value=True)
    ortho = factories.DepartmentFactory(hospital=hospital, code="ORTH", name="骨科")
    rows = [(datetime.date(2026, 1, 5), department, "100.00", 2), (datetime.date(2026, 1, 20), ortho, "50.00", 1),
            (datetime.date(2026, 3, 3), department, "300.00", 1), (datetime.date(2026, 3, 9), ortho, "20.00", 5)]
    for day, dept, price, quantity in rows:
        Consumption.objects.create(hospital=hospital, product=stent, quantity=quantity, location=warehouse,
                                   encounter="E1", doctor="D1", department=dept, unit_price=Decimal(price),
                                   occurred_at=at(day))
    DepartmentRevenue.objects.create(hospital=hospital, department=department, month=datetime.date(2026, 3, 1),
                                     revenue=Decimal("1000.00"))
    return {"cardio": department, "ortho": ortho}


def test_the_monthly_trend_has_every_month_with_hand_computed_amounts(hospital, uses):
    trend = monthly_trend(hospital=hospital, dimension="department",
                          period=Period(datetime.date(2026, 1, 1), datetime.date(2026, 3, 31)))
    assert trend.months == [datetime.date(2026, 1, 1), datetime.date(2026, 2, 1), datetime.date(2026, 3, 1)]
    assert trend.total.amounts == [Decimal("250.00"), Decimal("0.00"), Decimal("400.00")]
    lines = {line.key: line.amounts for line in trend.lines}
    assert lines == {uses["cardio"].pk: [Decimal("200.00"), Decimal("0.00"), Decimal("300.00")],
                     uses["ortho"].pk: [Decimal("50.00"), Decimal("0.00"), Decimal("100.00")]}


def test_a_line_chart_leaves_a_gap_for_a_missing_value_and_draws_the_limit():
    chart = line_chart(["2026-01", "2026-02", "2026-03"], [("A", [Decimal(10), None, Decimal(30)])],
                       percent=True, limit=Decimal(20))
    (series,) = chart.series
    assert len(series.points) == 2 and series.points[0].y > series.points[1].y  # 10 drawn lower than 30
    assert chart.series[0].points[1].x > chart.series[0].points[0].x
    assert series.points[1].y < chart.limit_y < series.points[0].y  # the limit between 10 and 30
    assert chart.y_ticks[-1].label.endswith("%")


def test_the_review_pdf_draws_both_charts_with_their_tables(hospital, uses):
    report = build_review_report(hospital=hospital, dimension="department",
                                 period=Period(datetime.date(2026, 1, 1), datetime.date(2026, 3, 31)))
    pdf = render_review_pdf(report)
    assert pdf.startswith(b"%PDF")
    shown = shown_strings(pdf)
    # the month labels appear on the two charts' axes and in the two tables
    assert shown.count("2026-02") >= 3
    assert "骨科" in shown and "30.00" in shown  # the table: 耗占比 of the cardio department in March
    assert any("耗占比" in text for text in shown)


def test_the_review_export_runs_as_a_background_job_and_its_page_shows_it(hospital, operator, uses):
    client = Client()
    client.force_login(operator)
    response = client.post("/review/export/", {"dimension": "department", "start": "2026-01-01",
                                               "end": "2026-03-31", "format": "csv"})
    job = BackgroundJob.objects.get(kind=BackgroundJob.Kind.REVIEW_EXPORT)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.status, job.progress, job.result) == ("READY", 100, {"rows": 2})
    rows = list(csv.reader(io.StringIO(job.result_file.open("rb").read().decode("utf-8-sig"))))
    assert rows[1][:4] == [uses["cardio"].name, "3", "2", "500.00"]
    status = client.get(f"/jobs/{job.pk}/status/").json()
    assert status["status"] == "READY" and status["download_url"]
    assert client.post("/review/export/", {"format": "doc"}).status_code == 400


# --- the reviewer role -----------------------------------------------------------------------------

def test_the_reviewer_reads_the_review_recalls_and_implants_but_moves_no_stock(
    hospital, department, units_in_store, product, uses
):
    reviewer = user(hospital, "reviewer")
    api = api_client_for(reviewer)
    for path in ("/api/v1/review/", "/api/v1/review/ratio/", "/api/v1/review/surgeries/",
                 "/api/v1/review/watched-items/", "/api/v1/review/top-settled/", "/api/v1/recalls/",
                 "/api/v1/implants/"):
        assert api.get(path).status_code == 200, path
    ratio = api.get("/api/v1/review/ratio/?first_month=2026-03-01&last_month=2026-03-31").json()
    assert [row["percent"] for row in ratio if row["department_name"] == uses["cardio"].name] == ["30.00"]
    assert api.post("/api/v1/review/revenue/", {"rows": [{"department": department.code, "month": "2026-03",
                                                          "revenue": "1"}]}, format="json").status_code == 403
    assert consume(api, department, "CT1", product, "r1").status_code == 403
    assert api.post("/api/v1/review/watched-items/", {"product": product.pk}, format="json").status_code == 403
    client = Client()
    client.force_login(reviewer)
    page = client.get("/").content.decode()
    assert 'href="/review/"' in page and 'href="/reconciliation/"' not in page
    for path in ("/review/", "/review/watched/", "/review/revenue/", "/review/red-lines/", "/recalls/", "/implants/"):
        assert client.get(path).status_code == 200, path
    assert client.get("/reconciliation/").status_code == 403
    assert client.get("/admin/").status_code == 302  # not staff: the admin's own login
    assert client.post("/review/red-lines/", {"department": department.pk, "max_percent": "5"}).status_code == 403
    assert not RatioRedLine.objects.exists()


def test_a_reviewer_of_another_hospital_sees_nothing_of_this_one(hospital, other_hospital, uses):
    stranger = api_client_for(user(other_hospital, "reviewer"))
    assert stranger.get("/api/v1/review/ratio/?first_month=2026-01-01&last_month=2026-03-31").json() == []
    assert stranger.get("/api/v1/review/?start=2026-01-01&end=2026-03-31").json()["rows"] == []
    job = BackgroundJob.objects.create(kind=BackgroundJob.Kind.REVIEW_EXPORT, hospital=hospital,
                                       requested_by=user(hospital, "reviewer"), params={})
    client = Client()
    client.force_login(user(other_hospital, "reviewer", "other-reviewer"))
    assert client.get(f"/jobs/{job.pk}/").status_code == 404


# --- pages: watched items, revenue import, red lines -------------------------------------------------

def test_watched_items_are_added_and_removed_on_their_page_and_a_spike_is_listed(hospital, operator, warehouse,
                                                                                  department):
    product = factories.ProductFactory(hospital=hospital, name="球囊")
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - datetime.timedelta(days=1)).replace(day=1)
    for months_back in range(1, 7):
        day = last_month
        for _ in range(months_back):
            day = (day - datetime.timedelta(days=1)).replace(day=1)
        Consumption.objects.create(hospital=hospital, product=product, quantity=2, location=warehouse, encounter="E",
                                   doctor="D1", department=department, unit_price=Decimal("10"), occurred_at=at(day))
    Consumption.objects.create(hospital=hospital, product=product, quantity=30, location=warehouse, encounter="E",
                               doctor="D1", department=department, unit_price=Decimal("10"), occurred_at=at(last_month))
    client = Client()
    client.force_login(operator)
    assert client.post("/review/watched/", {"product": product.pk, "reason": "用量突增"}).status_code == 302
    item = WatchedItem.objects.get()
    assert (item.product, item.reason, item.is_active) == (product, "用量突增", True)
    page = client.get("/review/watched/").content.decode()
    assert "球囊" in page and page.count('data-table="anomalies"') == 1
    anomalies = client.get("/review/watched/").context["anomalies"]
    assert {(a.by, a.who, a.quantity) for a in anomalies} == {("department", department.name, 30), ("doctor", "D1", 30)}
    assert client.post("/review/watched/", {"remove": item.pk}).status_code == 302
    item.refresh_from_db()
    assert item.is_active is False and client.get("/review/watched/").context["anomalies"] == []


def test_the_revenue_page_previews_errors_then_imports_the_rows_shown(hospital, operator, department):
    client = Client()
    client.force_login(operator)
    bad = io.BytesIO(f"科室编码,月份,医疗收入\n{department.code},2026-03,1000\nNOPE,2026-13,abc\n".encode())
    bad.name = "revenue.csv"
    page = client.post("/review/revenue/", {"file": bad})
    assert page.status_code == 200 and not DepartmentRevenue.objects.exists()
    assert [p.code for p in page.context["problems"]] == ["REVENUE_ROW_INVALID"] * 3
    assert page.context["rows_json"] == "" and 'data-invalid="1"' in page.content.decode()

    good = io.BytesIO(f"科室编码,月份,医疗收入\n{department.code},2026-03,1000\n".encode())
    good.name = "revenue.csv"
    preview = client.post("/review/revenue/", {"file": good})
    assert preview.context["problems"] == [] and not DepartmentRevenue.objects.exists()  # only shown
    assert client.post("/review/revenue/", {"rows": preview.context["rows_json"]}).status_code == 302
    assert DepartmentRevenue.objects.get().revenue == Decimal("1000.00")


def test_a_red_line_set_on_its_page_lists_the_crossing_and_raises_the_alert(hospital, operator, warehouse,
                                                                           department):
    last_month = (timezone.localdate().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    product = factories.ProductFactory(hospital=hospital)
    Consumption.objects.create(hospital=hospital, product=product, quantity=1, location=warehouse, encounter="E",
                               department=department, unit_price=Decimal("300"), occurred_at=at(last_month))
    DepartmentRevenue.objects.create(hospital=hospital, department=department, month=last_month,
                                     revenue=Decimal("1000"))
    client = Client()
    client.force_login(operator)
    assert client.post("/review/red-lines/", {"department": department.pk, "max_percent": "25"}).status_code == 302
    crossings = client.get("/review/red-lines/").context["crossings"]
    assert [(row.department_id, row.percent) for row in crossings] == [(department.pk, Decimal("30.00"))]
    assert Alert.objects.filter(kind=Alert.Kind.RATIO_RED_LINE, resolved_at__isnull=True).count() == 1
    assert client.post("/review/red-lines/", {"department": department.pk, "max_percent": ""}).status_code == 302
    assert not RatioRedLine.objects.exists()
    assert Alert.objects.filter(kind=Alert.Kind.RATIO_RED_LINE, resolved_at__isnull=True).count() == 0
    assert client.post("/review/red-lines/", {"department": department.pk, "max_percent": "-1"}).status_code == 200


def test_red_lines_and_watched_items_over_the_api(hospital, other_hospital, operator, department):
    api = api_client_for(operator)
    product = factories.ProductFactory(hospital=hospital)
    assert api.post("/api/v1/review/red-lines/", {"department": department.pk, "max_percent": "12.5"},
                    format="json").json() == [{"department": department.pk, "department_name": department.name,
                                               "max_percent": "12.50"}]
    theirs = factories.DepartmentFactory(hospital=other_hospital)
    refused = api.post("/api/v1/review/red-lines/", {"department": theirs.pk, "max_percent": "1"}, format="json")
    assert refused.status_code == 404 and refused.json()["code"] == "NOT_FOUND"
    assert api.post("/api/v1/review/red-lines/", {"department": department.pk, "max_percent": None},
                    format="json").json() == []
    item = api.post("/api/v1/review/watched-items/", {"product": product.pk}, format="json").json()
    assert api.delete(f"/api/v1/review/watched-items/{item['id']}/").json()["is_active"] is False
    stranger = api_client_for(user(other_hospital, "admin"))
    assert stranger.delete(f"/api/v1/review/watched-items/{item['id']}/").status_code == 404
    assert api_client_for(user(hospital, "reviewer")).get("/api/v1/review/red-lines/").status_code == 200
