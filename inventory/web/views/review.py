"""Consumable review pages (耗材点评): use and cost by a dimension with growth, per-surgery cost by
procedure with the distribution per doctor, and 耗占比 per department and month. Each chart is
rendered on the server with its table beside it; `?export=csv|xlsx` downloads the table."""
import datetime
from decimal import Decimal

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.reports_database import reports_reads
from inventory.selectors import review as selectors
from inventory.web.access import READERS, web_page
from inventory.web.charts import BarInput, bar_chart
from inventory.web.export import csv_response, xlsx_response

EXPORTS = {"csv": csv_response, "xlsx": xlsx_response}
EARLIEST, LATEST = datetime.date(2000, 1, 1), datetime.date(2100, 12, 31)
DIMENSION_LABELS = {
    "department": _("Department"), "doctor": _("Doctor"), "procedure": _("Procedure / surgery"),
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


@web_page(READERS)
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
    procedures = selectors.surgery_costs(hospital=hospital, period=period, high_value_only=high_value)
    first_month = (period.end.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    ratio = selectors.consumable_ratio(hospital=hospital, first_month=min(first_month, period.start),
                                       last_month=period.end)
    return render(request, "web/review/review.html", {
        "form": form, "dimension_label": DIMENSION_LABELS[dimension], "period": period,
        "rows": [(row, _growth(row.period_growth), _growth(row.year_growth)) for row in rows],
        "chart": chart, "procedures": [(p, strip_plot(p)) for p in procedures], "ratio": ratio, "query": request.GET.urlencode(),
    })
