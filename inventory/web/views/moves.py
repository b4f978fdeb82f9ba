"""Transfers (移库), returns to the supplier (退货) and scraps (报损), by scanning units into a list.

Each scan names one unit of the hospital and adds its row (with a hidden `units` field) to the
form; the submit calls `transfer_stock`, `return_to_supplier` or `scrap` with the form's
idempotency key, so a double submit replays the first order instead of moving anything twice.
Every problem the service finds is shown, and the rows of the units concerned are marked.
"""
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import Location, Movement, StockOrder, Unit
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.selectors.units import resolve_scan
from inventory.services.stock import return_to_supplier, scrap, transfer_stock
from inventory.web.access import STOCK_HANDLERS, web_page
from inventory.web.operations import hospital_for, new_form_key, posted_key, refused_answer, scan_answer, scanned_code
from inventory.web.problems import ShownProblem, problems_of, wants_json

TRANSFER, RETURN, SCRAP = StockOrder.Kind.TRANSFER, StockOrder.Kind.RETURN_TO_SUPPLIER, StockOrder.Kind.SCRAP
RECENT = 10

RETURN_REASONS = (
    ("QUALITY", gettext_lazy("Quality problem")),
    ("RECALL", gettext_lazy("Recall")),
    ("NEAR_EXPIRY", gettext_lazy("Near expiry")),
    ("EXPIRED", gettext_lazy("Expired")),
    ("WRONG_DELIVERY", gettext_lazy("Delivered in error")),
    ("OVERSTOCK", gettext_lazy("Overstock")),
)
SCRAP_REASONS = (
    ("DAMAGED", gettext_lazy("Damaged")),
    ("CONTAMINATED", gettext_lazy("Contaminated / packaging opened")),
    ("EXPIRED", gettext_lazy("Expired")),
    ("LOST", gettext_lazy("Lost")),
)


class MoveForm(forms.Form):
    """The order's header; which fields apply depends on the kind (see `for_kind`)."""

    to_location = forms.ModelChoiceField(label=gettext_lazy("Destination"), queryset=Location.objects.none(),
                                         empty_label=gettext_lazy("Choose the destination"))
    from_location = forms.ModelChoiceField(
        label=gettext_lazy("Scanned at (optional)"), queryset=Location.objects.none(), required=False,
        empty_label=gettext_lazy("Anywhere"),
        help_text=gettext_lazy("A unit that is not there is refused instead of being moved."),
    )
    supplier = forms.ModelChoiceField(label=gettext_lazy("Supplier"), queryset=None,
                                      empty_label=gettext_lazy("Choose the supplier"))
    reason_code = forms.ChoiceField(label=gettext_lazy("Reason"))
    note = forms.CharField(label=gettext_lazy("Note"), max_length=500, required=False)

    FIELDS = {
        TRANSFER: ("to_location", "from_location", "note"),
        RETURN: ("supplier", "reason_code", "note"),
        SCRAP: ("reason_code", "note"),
    }

    def __init__(self, *args: object, kind: str, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in self.FIELDS[kind]:
                del self.fields[name]
        locations = visible_to(request.user, Location.objects.filter(is_active=True)).order_by("code")
        if "to_location" in self.fields:
            self.fields["to_location"].queryset = locations
            self.fields["from_location"].queryset = locations
        if "supplier" in self.fields:
            self.fields["supplier"].queryset = StockScope.of(request.user).suppliers()
        if "reason_code" in self.fields:
            reasons = RETURN_REASONS if kind == RETURN else SCRAP_REASONS
            self.fields["reason_code"].choices = [("", _("Choose the reason")), *reasons]


PAGES = {
    TRANSFER: {"url": "web:moves", "title": gettext_lazy("Transfer"), "button": gettext_lazy("Transfer the units")},
    RETURN: {"url": "web:moves-return", "title": gettext_lazy("Return to supplier"),
             "button": gettext_lazy("Return the units")},
    SCRAP: {"url": "web:moves-scrap", "title": gettext_lazy("Scrap"), "button": gettext_lazy("Scrap the units")},
}


@web_page(STOCK_HANDLERS)
def transfer(request: HttpRequest) -> HttpResponse:
    return _move_page(request, TRANSFER)


@web_page(STOCK_HANDLERS)
def return_units(request: HttpRequest) -> HttpResponse:
    return _move_page(request, RETURN)


@web_page(STOCK_HANDLERS)
def scrap_units(request: HttpRequest) -> HttpResponse:
    return _move_page(request, SCRAP)


def _move_page(request: HttpRequest, kind: str) -> HttpResponse:
    if request.method != "POST":
        return _render(request, kind, MoveForm(kind=kind, request=request), units=[], key=new_form_key(kind.lower()))
    form = MoveForm(request.POST, kind=kind, request=request)
    units, problems = _posted_units(request)
    key = request.POST.get("idempotency_key", "")
    if problems or not form.is_valid():
        return _render(request, kind, form, units=units, key=key, problems=problems_of(form) + problems, status=400)
    try:
        order = _perform(request, kind, form.cleaned_data, units, posted_key(request, kind.lower()))
    except Refused as refused:
        failed: dict[int, list[str]] = {}
        for problem in refused.problems:
            if isinstance(problem.item, int):
                failed.setdefault(problem.item, []).append(problem.detail)
        return _render(request, kind, form, units=units, key=key, problems=_by_unit(refused, units), failed=failed,
                       status=refused.status)
    messages.success(request, _("%(kind)s #%(order)s done: %(count)s units.") % {
        "kind": order.get_kind_display(), "order": order.pk, "count": len(units)})
    return redirect("web:moves-order", pk=order.pk)


def _perform(request: HttpRequest, kind: str, data: dict, units: list[Unit], key: str) -> StockOrder:
    actor, hospital = Actor(user=request.user), hospital_for(request)
    if kind == TRANSFER:
        return transfer_stock(actor=actor, hospital=hospital, to_location=data["to_location"],
                              from_location=data.get("from_location"), units=units, note=data["note"],
                              idempotency_key=key)
    if kind == RETURN:
        return return_to_supplier(actor=actor, hospital=hospital, supplier=data["supplier"],
                                  reason_code=data["reason_code"], units=units, note=data["note"], idempotency_key=key)
    return scrap(actor=actor, hospital=hospital, reason_code=data["reason_code"], units=units, note=data["note"],
                 idempotency_key=key)


def _posted_units(request: HttpRequest) -> tuple[list[Unit], list[ShownProblem]]:
    """The units of the posted rows, in scan order; an id that is no unit of the hospital is a problem."""
    ids = []
    for value in request.POST.getlist("units"):
        if value.isdigit() and int(value) not in ids:
            ids.append(int(value))
    found = _units(request).in_bulk(ids)
    missing = [pk for pk in ids if pk not in found]
    problems = problems_of(Refused(Refusal.NOT_FOUND, what=_("Unit"))) if missing else []
    return [found[pk] for pk in ids if pk in found], problems


def _units(request: HttpRequest) -> object:
    return StockScope.of(request.user).units().select_related("product", "location", "supplier")


def _by_unit(refused: Refused, units: list[Unit]) -> list[ShownProblem]:
    """The service's problems, each naming its unit by serial rather than by id."""
    serials = {unit.pk: f"SN {unit.serial}" for unit in units}
    return [
        ShownProblem(problem.code, problem.detail, serials.get(problem.item, "") if problem.item is not None else "")
        for problem in refused.problems
    ]


def _render(request: HttpRequest, kind: str, form: MoveForm, *, units: list[Unit], key: str,
            problems: list[ShownProblem] = (), failed: dict | None = None, status: int = 200) -> HttpResponse:
    recent = visible_to(request.user, StockOrder.objects.filter(kind=kind)).select_related(
        "to_location", "supplier", "created_by").order_by("-occurred_at", "-pk")[:RECENT]
    return render(request, "web/moves/move.html", {
        "kind": kind, "page": PAGES[kind], "pages": PAGES, "form": form, "units": units, "key": key,
        "problems": list(problems), "rows": [(unit, (failed or {}).get(unit.pk, [])) for unit in units],
        "recent": recent,
    }, status=status)


@require_POST
@web_page(STOCK_HANDLERS)
def scan(request: HttpRequest) -> HttpResponse:
    """One scanned code → its unit's row for the list (JSON), or why there is none."""
    listed = {int(pk) for pk in request.POST.get("listed", "").split(",") if pk.strip().isdigit()}
    try:
        hospital = hospital_for(request)
        code = scanned_code(request, request.POST.get("code", ""))
        if not code:
            raise Refused(Refusal.NOTHING_SCANNED)
        resolution = resolve_scan(hospital, code)
        if problem := resolution.problem:
            raise Refused([problem])
        unit = _units(request).filter(pk=resolution.unit.pk).first()
        if unit is None:
            raise Refused(Refusal.NOT_FOUND, what=_("Unit"))
        if unit.pk in listed:
            raise Refused(Refusal.UNIT_NAMED_TWICE, unit=unit.serial)
    except Refused as refused:
        if wants_json(request):
            return refused_answer(refused)
        for problem in problems_of(refused):
            messages.error(request, problem.detail)
        return redirect("web:moves")
    row = render_to_string("web/moves/_unit_row.html", {"unit": unit}, request=request)
    where = unit.location.name if unit.location else "—"
    message = _("%(product)s SN %(serial)s (%(status)s, %(where)s) added") % {
        "product": unit.product.name, "serial": unit.serial, "status": unit.get_status_display(), "where": where}
    return scan_answer(ok=True, message=message, row=row, unit=unit.pk)


@web_page(STOCK_HANDLERS)
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """What one transfer, return or scrap did: every unit with where it came from and went."""
    order = get_object_or_404(
        visible_to(request.user, StockOrder.objects.select_related("to_location", "supplier", "created_by")), pk=pk)
    movements = Movement.objects.filter(
        document_type=Movement.DocumentType.STOCK_ORDER, document_id=order.pk
    ).select_related("unit", "product", "from_location", "to_location").order_by("pk")
    page = PAGES.get(order.kind)
    return render(request, "web/moves/order.html", {"order": order, "movements": movements, "page": page})
