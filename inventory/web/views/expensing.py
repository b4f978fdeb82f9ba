"""科室耗材成本: the department's consumable cost of a period — what was expensed to each department
(科室领用即消耗) per product, at cost — with CSV / XLSX downloads (base units, as every export).

Everyone may open it; a nurse sees her departments only (`StockScope`).
"""
import datetime

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.errors import Refused
from inventory.models import Department
from inventory.selectors.expensing import COLUMNS, department_cost
from inventory.selectors.stock import StockScope
from inventory.services.reconciliation import check_period
from inventory.web.access import EVERYONE, web_page
from inventory.web.export import csv_response, xlsx_response
from inventory.web.problems import problems_of

EXPORTS = {"csv": csv_response, "xlsx": xlsx_response}


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class DepartmentCostForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("First day"), required=False, widget=_date_input())
    end = forms.DateField(label=gettext_lazy("Last day"), required=False, widget=_date_input())
    department = forms.ModelChoiceField(label=gettext_lazy("Department"), required=False,
                                        queryset=Department.objects.none(), empty_label=gettext_lazy("All departments"))

    def __init__(self, data: object, *, scope: StockScope) -> None:
        super().__init__(data)
        departments = Department.objects.filter(locations__in=scope.locations()).distinct().order_by("code")
        self.fields["department"].queryset = departments

    def clean(self) -> dict:
        data = super().clean()
        today = timezone.localdate()
        data["start"] = data.get("start") or today.replace(day=1)
        data["end"] = data.get("end") or max(today, data["start"])
        if data["end"] < data["start"]:
            self.add_error("end", _("The last day is before the first day."))
        return data


@web_page(EVERYONE)
def department_cost_page(request: HttpRequest) -> HttpResponse:
    scope = StockScope.of(request.user)
    form = DepartmentCostForm(request.GET, scope=scope)
    if not form.is_valid():
        return render(request, "web/expensing/cost.html", {"form": form, "problems": problems_of(form)}, status=400)
    start, end, department = form.cleaned_data["start"], form.cleaned_data["end"], form.cleaned_data["department"]
    try:
        check_period(start, end)
    except Refused as refused:
        return render(request, "web/expensing/cost.html", {"form": form, "problems": problems_of(refused)}, status=400)
    report = department_cost(scope, start=start, end=end, department_id=department.pk if department else None)
    if (export := EXPORTS.get(request.GET.get("export", ""))) is not None:
        return export(_filename(start, end, request.GET["export"]), COLUMNS,
                      (row.export_row() for row in report.rows))
    query = request.GET.copy()
    query.pop("export", None)
    return render(request, "web/expensing/cost.html", {
        "form": form, "report": report, "departments": report.by_department(), "query": query.urlencode(),
    })


def _filename(start: datetime.date, end: datetime.date, extension: str) -> str:
    return f"department-cost-{start:%Y%m%d}-{end:%Y%m%d}.{extension}"
