"""Consumable review pages (耗材点评): use and cost by a dimension with growth and its monthly trend,
per-surgery cost by procedure with the distribution per doctor, and 耗占比 per department and month;
the watched items with their anomalies, the revenue import (preview, then import) and the red lines.
Each chart is rendered on the server with its table beside it; `?export=csv|xlsx` downloads the
table, and the whole review (CSV, XLSX, or the PDF with its charts) is made by a background job."""
import datetime
import json
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from inventory.errors import Refusal, Refused
from inventory.models import BackgroundJob, Department, Product, RatioRedLine, Role, WatchedItem
from inventory.reports_database import reports_reads
from inventory.selectors import review as selectors
from inventory.services import review as services
from inventory.services.background import request_job
from inventory.services.review_report import FORMATS, ratio_series, trend_series, trend_table
from inventory.web.access import REVIEW_READERS, may, web_page
from inventory.web.charts import BarInput, bar_chart, line_chart
from inventory.web.export import csv_response, xlsx_response
from inventory.web.problems import problems_of

EXPORTS = {"csv": csv_response, "xlsx": xlsx_response}
REVIEW_WRITERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})  # keep the watched list, revenue, red lines
EARLIEST, LATEST = datetime.date(2000, 1, 1), datetime.date(2100, 12, 31)
DIMENSION_LABELS = {
    "department": _("Department"), "clinical_team": _("Clinical team (诊疗组)"), "doctor": _("Doctor"), "procedure": _("Procedure / surgery"),
    "product": _("Product"), "product_class": _("Product class"), "supplier": _("Supplier"),
}


class ReviewForm(forms.Form):
    dimension = forms.ChoiceField(label=_("Review by"), choices=list(DIMENSION_LABELS.items()), required=False)
    start = forms.DateField(label=_("From"), required=False)
    end = forms.DateField(label=_("To"), required=False)
    high_value = forms.BooleanField(label=_("High-value only"), required=False)

    def query(self) -> tuple[str, selectors.Period, bool]:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        today = timezone.localdate()
        start = _bounded(data.get("start")) or today.replace(day=1)
        end = _bounded(data.get("end")) or max(today, start)
        if end < start:
            start, end = end, start
        return data.get("dimension") or "department", selectors.Period(start, end), bool(data.get("high_value"))


def _bounded(day: datetime.date | None) -> datetime.date | None:
    return day if day is not None and EARLIEST <= day <= LATEST else None


def _growth(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:+}%"


STRIP_WIDTH, STRIP_LEFT, STRIP_RIGHT, STRIP_ROW = 520, 90, 505, 26


def strip_plot(procedure: selectors.Procedure) -> dict:
    """A strip plot of one procedure: a row per doctor, a dot per surgery (outliers in red), a tick at
    the doctor's median; x from 0 to the costliest surgery. Coordinates only: the template draws it."""
    high = max((s.cost for s in procedure.surgeries), default=Decimal(0)) or Decimal(1)

    def x_of(value: Decimal) -> float:
        return round(STRIP_LEFT + float(value / high) * (STRIP_RIGHT - STRIP_LEFT), 1)

    rows = []
    for index, doctor in enumerate(procedure.doctors):
        y = 20 + index * STRIP_ROW
        rows.append({
            "doctor": doctor.doctor, "y": y, "median_x": x_of(doctor.median),
            "dots": [{"x": x_of(s.cost), "cost": s.cost, "outlier": s.outlier, "surgery": s.surgery_id}
                     for s in procedure.surgeries if s.doctor == doctor.doctor],
        })
    height = 30 + len(rows) * STRIP_ROW
    return {"width": STRIP_WIDTH, "height": height, "left": STRIP_LEFT, "right": STRIP_RIGHT, "axis_y": height - 12,
            "rows": rows, "high": high, "fence_x": x_of(min(procedure.fence, high))}


@web_page(REVIEW_READERS)
def review(request: HttpRequest) -> HttpResponse:
    with reports_reads():  # analytics: on the reports replica when there is one, one snapshot
        return _review(request)


def _review(request: HttpRequest) -> HttpResponse:
    form = ReviewForm(request.GET)
    dimension, period, high_value = form.query()
    hospital = request.user.hospital
    rows = selectors.review(hospital=hospital, dimension=dimension, period=period, high_value_only=high_value)
    if (export := request.GET.get("export")) in EXPORTS:
        header = [str(DIMENSION_LABELS[dimension]), str(_("Quantity")), str(_("Amount")), str(_("Previous period")),
                  str(_("Period-on-period %")), str(_("A year before")), str(_("Year-on-year %"))]
        return EXPORTS[export](
            f"review-{dimension}-{period.start}-{period.end}.{export}", header,
            ([row.label, row.quantity, row.amount, row.previous_amount, row.period_growth, row.year_ago_amount,
              row.year_growth] for row in rows),
        )
    top = rows[:15]
    chart = bar_chart([BarInput(row.label[:8], row.amount, f"{row.label}: {row.amount}") for row in top]) if top \
        else None
    trend = selectors.monthly_trend(hospital=hospital, dimension=dimension, period=period, high_value_only=high_value)
    months = [f"{month:%Y-%m}" for month in trend.months]
    procedures = selectors.surgery_costs(hospital=hospital, period=period, high_value_only=high_value)
    first_month = (period.end.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    ratio = selectors.consumable_ratio(hospital=hospital, first_month=min(first_month, period.start),
                                       last_month=period.end)
    ratio_months = selectors.months_of(selectors.Period(min(first_month, period.start), period.end))
    return render(request, "web/review/review.html", {
        "form": form, "dimension_label": DIMENSION_LABELS[dimension], "period": period,
        "rows": [(row, _growth(row.period_growth), _growth(row.year_growth)) for row in rows],
        "chart": chart, "procedures": [(p, strip_plot(p)) for p in procedures], "ratio": ratio,
        "query": request.GET.urlencode(),
        "trend": trend, "trend_rows": trend_table(trend), "trend_chart": line_chart(months, trend_series(trend)),
        "ratio_chart": line_chart([f"{m:%Y-%m}" for m in ratio_months], ratio_series(ratio, ratio_months),
                                  percent=True) if ratio else None,
        "export_params": {"dimension": dimension, "start": period.start, "end": period.end,
                          "high_value": "on" if high_value else ""},
        "formats": FORMATS,
    })


@require_POST
@web_page(REVIEW_READERS)
def review_export(request: HttpRequest) -> HttpResponse:
    """The whole review as CSV, XLSX or a PDF with its charts, made by a background job (a review over
    years reads every use of those years): answers the job's page, which shows its progress."""
    form = ReviewForm(request.POST)
    dimension, period, high_value = form.query()
    file_format = request.POST.get("format", "")
    if file_format not in FORMATS or request.user.hospital_id is None:
        return HttpResponseBadRequest()
    job = request_job(kind=BackgroundJob.Kind.REVIEW_EXPORT, requested_by=request.user,
                      hospital=request.user.hospital,
                      params={"dimension": dimension, "start": period.start.isoformat(),
                              "end": period.end.isoformat(), "high_value": high_value, "format": file_format})
    return redirect("web:job", pk=job.pk)


# --- watched items ------------------------------------------------------------------------------------

class WatchForm(forms.Form):
    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def __init__(self, *args: object, hospital: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = Product.objects.filter(hospital=hospital).order_by("name")


class MonthForm(forms.Form):
    month = forms.DateField(label=_("Month"), required=False, input_formats=["%Y-%m", "%Y-%m-%d"],
                            widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"))

    def chosen_month(self) -> datetime.date:
        """The chosen month (first day), default the last complete month."""
        self.is_valid()
        chosen = _bounded(getattr(self, "cleaned_data", {}).get("month"))
        if chosen is None:
            chosen = (timezone.localdate().replace(day=1) - datetime.timedelta(days=1))
        return chosen.replace(day=1)


@web_page(REVIEW_READERS)
def watched_items(request: HttpRequest) -> HttpResponse:
    """The watched consumables (重点监控耗材): add and take off (administrators, SPD operators), and the
    anomalies of a month by the rule the daily scan applies (median of 6 months + k × MAD)."""
    hospital = request.user.hospital
    may_edit = may(request.user, REVIEW_WRITERS)
    form = WatchForm(request.POST if request.method == "POST" and "product" in request.POST else None,
                     hospital=hospital)
    problems = []
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        try:
            if "remove" in request.POST:
                item = services.unwatch_product(hospital=hospital, item_id=_int(request.POST["remove"]))
                messages.success(request, gettext("%(product)s is no longer watched.") % {"product": item.product.name})
                return redirect("web:review-watched")
            if form.is_valid():
                item = services.watch_product(hospital=hospital, product_id=form.cleaned_data["product"].pk,
                                              reason=form.cleaned_data["reason"])
                messages.success(request, gettext("%(product)s is watched.") % {"product": item.product.name})
                return redirect("web:review-watched")
            problems = problems_of(form)
        except Refused as refused:
            problems = problems_of(refused)
    month_form = MonthForm(request.GET)
    month = month_form.chosen_month()
    return render(request, "web/review/watched.html", {
        "items": WatchedItem.objects.filter(hospital=hospital, is_active=True).select_related("product"),
        "form": form, "may_edit": may_edit, "problems": problems, "month_form": month_form, "month": month,
        "anomalies": services.find_anomalies(hospital=hospital, month=month),
        "k": services.anomaly_k(), "min_mad": services.anomaly_min_mad(),
    })


def _int(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- revenue import -----------------------------------------------------------------------------------

class RevenueUploadForm(forms.Form):
    file = forms.FileField(label=_("Revenue file (CSV, XLSX or JSON)"))


@web_page(REVIEW_READERS)
def revenue_import(request: HttpRequest) -> HttpResponse:
    """Upload a revenue file from the HIS: it is read and checked and shown (every row, every problem
    by row and column) before anything is stored; importing then stores exactly the rows shown."""
    hospital = request.user.hospital
    may_edit = may(request.user, REVIEW_WRITERS)
    form, preview, problems, rows_json = RevenueUploadForm(), [], [], ""
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        try:
            if "rows" in request.POST:  # the confirmed preview
                rows = _rows_from(request.POST["rows"])
                report = services.import_revenue(hospital=hospital, rows=rows)
                services.scan_red_lines(hospital=hospital)
                messages.success(request, gettext("%(rows)s rows imported: %(created)s new, %(updated)s replaced.") % {
                    "rows": report.rows, "created": report.created, "updated": report.updated})
                return redirect("web:review-revenue")
            form = RevenueUploadForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                rows = services.parse_revenue_file(upload, upload.name)
                preview, found = services.check_revenue_rows(hospital=hospital, rows=rows)
                problems = problems_of(Refused(found)) if found else []
                if not found:
                    rows_json = json.dumps([{k: str(v) if v is not None else "" for k, v in row.items()} for row in rows])
            else:
                problems = problems_of(form)
        except Refused as refused:
            problems = problems_of(refused)
    recent = selectors.consumable_ratio(hospital=hospital, first_month=_months_back(11), last_month=timezone.localdate())
    return render(request, "web/review/revenue.html", {
        "form": form, "may_edit": may_edit, "preview": preview, "problems": problems, "rows_json": rows_json,
        "ratio": [row for row in recent if row.revenue is not None],
    })


def _rows_from(text: str) -> list[dict]:
    try:
        rows = json.loads(text)
    except ValueError:
        rows = None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise Refused(Refusal.FILE_UNREADABLE, format="JSON")
    return rows


def _months_back(months: int) -> datetime.date:
    first = timezone.localdate().replace(day=1)
    index = first.year * 12 + first.month - 1 - months
    return datetime.date(index // 12, index % 12 + 1, 1)


# --- red lines ----------------------------------------------------------------------------------------

class RedLineForm(forms.Form):
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.none())
    max_percent = forms.DecimalField(label=_("Red line %"), max_digits=6, decimal_places=2, min_value=Decimal("0.01"),
                                     max_value=Decimal("9999"), required=False,
                                     help_text=_("Empty: no red line for this department"))

    def __init__(self, *args: object, hospital: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = Department.objects.filter(hospital=hospital).order_by("code")


@web_page(REVIEW_READERS)
def red_lines(request: HttpRequest) -> HttpResponse:
    """The 耗占比 red line of each department (set or removed by administrators and SPD operators) and
    the department-months of the last year above it."""
    hospital = request.user.hospital
    may_edit = may(request.user, REVIEW_WRITERS)
    form = RedLineForm(request.POST if request.method == "POST" else None, hospital=hospital)
    problems = []
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        if form.is_valid():
            try:
                services.set_red_line(hospital=hospital, department_id=form.cleaned_data["department"].pk,
                                      max_percent=form.cleaned_data["max_percent"])
            except Refused as refused:
                problems = problems_of(refused)
            else:
                messages.success(request, gettext("The red line of %(department)s is saved.") % {
                    "department": form.cleaned_data["department"].name})
                return redirect("web:review-red-lines")
        else:
            problems = problems_of(form)
    ratio = selectors.consumable_ratio(hospital=hospital, first_month=_months_back(11), last_month=timezone.localdate())
    return render(request, "web/review/red_lines.html", {
        "form": form, "may_edit": may_edit, "problems": problems,
        "lines": RatioRedLine.objects.filter(hospital=hospital).select_related("department").order_by(
            "department__code"),
        "crossings": [row for row in ratio if row.over_red_line],
    })
