"""科室耗材成本: the department's consumable cost of a period — what was expensed to each department
(科室领用即消耗) per product, at cost — with CSV / XLSX downloads (base units, as every export).

Everyone may open it; a nurse sees her departments only (`StockScope`).

`/expensing/count/` — the department count (二级库盘点): a nurse of the department, or the warehouse,
SPD operators and administrators, enter what is left of each lot of the items expensed on issue in a
department store (in any packaging unit; prefilled with the books), review what would be expensed
(the service rehearsed and rolled back), then confirm: `services.expensing.expense_department_stock`.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.actors import Actor
from inventory.errors import Problem, Refusal, Refused
from inventory.models import Department, Location, LotBalance, StockOrder
from inventory.selectors.expensing import COLUMNS, department_cost
from inventory.selectors.stock import StockScope
from inventory.services.expensing import (
    EXPENSING_DEPARTMENT_KINDS,
    EXPENSING_LOCATION_KINDS,
    CountedLot,
    expense_department_stock,
)
from inventory.services.reconciliation import check_period
from inventory.services.units_of_measure import UnitOfMeasure, to_base_quantity, units_of
from inventory.web.access import CLINICAL, EVERYONE, web_page
from inventory.web.export import csv_response, xlsx_response
from inventory.web.operations import new_form_key, posted_key, rehearse, shown
from inventory.web.problems import ShownProblem, problems_of

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


# --- the department count (二级库盘点即消耗) ------------------------------------------------------

@dataclass
class CountRow:
    """One lot of an item expensed on issue on hand at the counted location, and what the count says."""

    balance: LotBalance
    units: list[UnitOfMeasure]
    entered: str = ""
    unit: str = ""
    left: int | None = None

    @property
    def field(self) -> str:
        return f"left-{self.balance.pk}"

    @property
    def used(self) -> int:
        return self.balance.quantity - (self.left if self.left is not None else self.balance.quantity)


def count_locations(request: HttpRequest) -> QuerySet:
    """Stores, cabinets and operating rooms of clinical departments the person may count (a nurse: hers)."""
    return StockScope.of(request.user).locations().filter(
        is_active=True, kind__in=EXPENSING_LOCATION_KINDS, department__kind__in=EXPENSING_DEPARTMENT_KINDS,
    ).select_related("department").order_by("department__code", "code")


def _count_rows(location: Location) -> list[CountRow]:
    balances = LotBalance.objects.filter(location=location, product__expensed_on_issue=True, quantity__gt=0) \
        .select_related("product").prefetch_related("product__packaging_units") \
        .order_by("product__internal_code", "expiry", "lot", "pk")
    return [CountRow(balance, units_of(balance.product)) for balance in balances]


def _read_count(request: HttpRequest, rows: list[CountRow]) -> list[ShownProblem]:
    """The posted count of each row in base units; the problems of the rows that do not convert."""
    problems: list[Problem] = []
    for index, row in enumerate(rows):
        row.entered = request.POST.get(row.field, "").strip()
        row.unit = request.POST.get(f"unit-{row.balance.pk}", "").strip()
        if row.entered == "":
            row.left = row.balance.quantity  # not changed: all still there
            continue
        try:
            quantity = Decimal(row.entered)
            row.left = to_base_quantity(product=row.balance.product, quantity=quantity, unit=row.unit,
                                        field=row.field, unit_field=f"unit-{row.balance.pk}")
        except InvalidOperation:
            problems.append(Problem(Refusal.INVALID_REQUEST, {"detail": _("%(product)s lot %(lot)s: not a number") % {
                "product": row.balance.product.name, "lot": row.balance.lot}}, index))
        except Refused as refused:
            problems += refused.problems
    return shown(problems)


@web_page(CLINICAL)
def department_count(request: HttpRequest) -> HttpResponse:
    """Count what is left of items expensed on issue in a department store and expense what was used
    (`services.expensing.expense_department_stock`): count, review (rehearsed), confirm."""
    locations = count_locations(request)
    chosen = request.POST.get("location") or request.GET.get("location") or ""
    location = locations.filter(pk=chosen).first() if chosen.isdigit() else None
    context = {"locations": locations, "location": location, "key": new_form_key("department-count")}
    if location is None:
        status = 404 if chosen else 200
        return render(request, "web/expensing/count.html", context, status=status)
    rows = _count_rows(location)
    context.update(rows=rows, at_count=location.department.expense_at_count)
    if request.method != "POST":
        return render(request, "web/expensing/count.html", context)
    context["key"] = request.POST.get("idempotency_key", "")
    context["note"] = note = request.POST.get("note", "").strip()[:500]
    problems = _read_count(request, rows)
    if problems:
        return render(request, "web/expensing/count.html", {**context, "problems": problems}, status=400)
    counted = [CountedLot(row.balance.product, row.balance.lot, row.left) for row in rows]

    def perform() -> StockOrder:
        return expense_department_stock(actor=Actor(user=request.user), location=location, counted=counted,
                                        note=note, idempotency_key=posted_key(request, "department-count"))

    step = request.POST.get("step", "review")
    if step == "edit":
        return render(request, "web/expensing/count.html", context)
    try:
        if step != "confirm":
            rehearse(perform)
            return render(request, "web/expensing/count.html", {
                **context, "review": True, "used": [row for row in rows if row.used > 0]})
        order = perform()
    except Refused as refused:
        return render(request, "web/expensing/count.html", {**context, "problems": problems_of(refused)},
                      status=refused.status)
    used = [row for row in rows if row.used > 0]
    messages.success(request, _("Department count #%(order)s posted: %(lots)s lots expensed, %(quantity)s in base units.")
                     % {"order": order.pk, "lots": len(used), "quantity": sum(row.used for row in used)})
    return redirect(f"{reverse('web:department-count')}?location={location.pk}")
