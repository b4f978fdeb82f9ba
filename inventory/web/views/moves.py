"""Transfers (移库), returns to the supplier (退货), scraps (报损) and releases from quarantine (解除隔离):
units scanned into a list, lots
added with a quantity, then a review step before anything moves.

Each scan names one unit of the hospital and adds its row (with a hidden `units` field) to the
form; a lot is added by choosing one of the lot balances on hand and a quantity (`lot_balance` /
`lot_quantity`). The form's button says what the post is for (`step`):

- `review` (the default): the order is checked by the very service that will do it, rehearsed in a
  transaction that is rolled back (`operations.rehearse`), and the review page shows what moves,
  how many, its value and where to — with the cabinet warning for units still in an RFID cabinet.
  Nothing is changed.
- `confirm` (the review page's button): `transfer_stock`, `return_to_supplier` or `scrap` with the
  form's idempotency key, so a double submit replays the first order instead of moving twice.
- `edit` (back from the review) and `add_lot`: the list page again, with its lines.

Every problem the service finds is shown, and the rows of the units concerned are marked.
"""
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import Location, LotBalance, Movement, StockOrder, Unit, UnitStatus
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.selectors.units import resolve_scan
from inventory.services.documents_pdf import order_document_pdf
from inventory.services.stock import LotQuantity, release_from_quarantine, return_to_supplier, scrap, transfer_stock
from inventory.web.access import STOCK_HANDLERS, web_page
from inventory.web.describe import RELEASE_REASONS, RETURN_REASONS, SCRAP_REASONS, reason_label
from inventory.web.operations import (
    hospital_for,
    new_form_key,
    posted_key,
    refused_answer,
    rehearse,
    scan_answer,
    scanned_code,
)
from inventory.web.problems import ShownProblem, problems_of, wants_json, worded

TRANSFER, RETURN, SCRAP = StockOrder.Kind.TRANSFER, StockOrder.Kind.RETURN_TO_SUPPLIER, StockOrder.Kind.SCRAP
RELEASE = StockOrder.Kind.QUARANTINE_RELEASE
RECENT = 10
MAX_LOT_QUANTITY = 100_000


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
        RELEASE: ("to_location", "reason_code", "note"),
    }

    def __init__(self, *args: object, kind: str, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in self.FIELDS[kind]:
                del self.fields[name]
        locations = visible_to(request.user, Location.objects.filter(is_active=True)).order_by("code")
        if "to_location" in self.fields:
            self.fields["to_location"].queryset = locations
        if "from_location" in self.fields:
            self.fields["from_location"].queryset = locations
        if "supplier" in self.fields:
            self.fields["supplier"].queryset = StockScope.of(request.user).suppliers()
        if "reason_code" in self.fields:
            reasons = {RETURN: RETURN_REASONS, SCRAP: SCRAP_REASONS, RELEASE: RELEASE_REASONS}[kind]
            self.fields["reason_code"].choices = [("", _("Choose the reason")), *reasons]


class AddLotForm(forms.Form):
    """A lot of a lot-tracked product to add to the list: one of the balances on hand, and how many.

    Its fields sit inside the move form, which is also sent to review the order: the browser must
    not require them then (they are checked when "add the lot" is pressed)."""

    use_required_attribute = False

    lot_balance = forms.ModelChoiceField(label=gettext_lazy("Lot on hand"), queryset=LotBalance.objects.none(),
                                         empty_label=gettext_lazy("Choose product, lot and location"))
    lot_quantity_new = forms.IntegerField(label=gettext_lazy("Quantity"), min_value=1, max_value=MAX_LOT_QUANTITY,
                                          initial=1)

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["lot_balance"]
        field.queryset = lot_balances(request)
        field.label_from_instance = _lot_label


def lot_balances(request: HttpRequest) -> QuerySet:
    return StockScope.of(request.user).lot_balances().filter(quantity__gt=0).select_related(
        "product", "location").order_by("product__internal_code", "expiry", "lot", "location__code")


def _lot_label(balance: LotBalance) -> str:
    expiry = f" · {balance.expiry:%Y-%m-%d}" if balance.expiry else ""
    return (f"{balance.product.internal_code} {balance.product.name} · {_('lot')} {balance.lot}{expiry} · "
            f"{balance.location.name} ({balance.quantity})")


@dataclass(frozen=True)
class LotLine:
    """A quantity of one lot balance in the list."""

    balance: LotBalance
    quantity: int

    @property
    def value(self) -> Decimal:
        return self.balance.unit_cost * self.quantity

    def as_lot_quantity(self) -> LotQuantity:
        return LotQuantity(product=self.balance.product, lot=self.balance.lot, quantity=self.quantity,
                           from_location=self.balance.location)


@dataclass(frozen=True)
class Lines:
    units: list[Unit]
    lots: list[LotLine]

    @property
    def quantity(self) -> int:
        return len(self.units) + sum(line.quantity for line in self.lots)

    @property
    def value(self) -> Decimal:
        return sum((unit.unit_cost for unit in self.units), Decimal("0")) + sum(
            (line.value for line in self.lots), Decimal("0"))

    def __bool__(self) -> bool:
        return bool(self.units or self.lots)


PAGES = {
    TRANSFER: {"url": "web:moves", "title": gettext_lazy("Transfer"), "button": gettext_lazy("Review the transfer"),
               "confirm": gettext_lazy("Confirm the transfer")},
    RETURN: {"url": "web:moves-return", "title": gettext_lazy("Return to supplier"),
             "button": gettext_lazy("Review the return"), "confirm": gettext_lazy("Confirm the return")},
    SCRAP: {"url": "web:moves-scrap", "title": gettext_lazy("Scrap"), "button": gettext_lazy("Review the scrap"),
            "confirm": gettext_lazy("Confirm the scrap")},
    RELEASE: {"url": "web:moves-release", "title": gettext_lazy("Release from quarantine"),
              "button": gettext_lazy("Review the release"), "confirm": gettext_lazy("Confirm the release")},
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


@web_page(STOCK_HANDLERS)
def release_units(request: HttpRequest) -> HttpResponse:
    """A quality decision: only an SPD operator or an administrator may release (the service says so)."""
    return _move_page(request, RELEASE)


def _move_page(request: HttpRequest, kind: str) -> HttpResponse:
    if request.method != "POST":
        return _render(request, kind, MoveForm(kind=kind, request=request), Lines([], []),
                       key=new_form_key(kind.lower()))
    form = MoveForm(request.POST, kind=kind, request=request)
    lines, problems = _posted_lines(request)
    key = request.POST.get("idempotency_key", "")
    step = request.POST.get("step", "review")
    if step == "add_lot":
        return _add_lot(request, kind, form, lines, key, problems)
    if step == "edit":
        return _render(request, kind, form, lines, key=key, problems=problems)
    if not lines and not problems:
        problems = [ShownProblem("INVALID_REQUEST", _("Scan at least one unit or add a lot first."))]
    if problems or not form.is_valid():
        return _render(request, kind, form, lines, key=key, problems=problems_of(form) + problems, status=400)
    try:
        if step != "confirm":
            rehearse(lambda: _perform(request, kind, form.cleaned_data, lines, posted_key(request, kind.lower())))
            return _review(request, kind, form, lines, key)
        order = _perform(request, kind, form.cleaned_data, lines, posted_key(request, kind.lower()))
    except Refused as refused:
        failed: dict[int, list[str]] = {}
        for problem in refused.problems:
            if isinstance(problem.item, int):
                failed.setdefault(problem.item, []).append(worded(problem))
        return _render(request, kind, form, lines, key=key, problems=_by_unit(refused, lines.units), failed=failed,
                       status=refused.status)
    messages.success(request, _("%(kind)s #%(order)s done: %(count)s items, %(value)s.") % {
        "kind": order.get_kind_display(), "order": order.pk, "count": lines.quantity, "value": _money(lines.value)})
    return redirect("web:moves-order", pk=order.pk)


def _add_lot(request: HttpRequest, kind: str, form: MoveForm, lines: Lines, key: str,
             problems: list[ShownProblem]) -> HttpResponse:
    adding = AddLotForm(request.POST, request=request)
    if not adding.is_valid():
        return _render(request, kind, form, lines, key=key, problems=problems + problems_of(adding), status=400,
                       lot_form=adding)
    balance, quantity = adding.cleaned_data["lot_balance"], adding.cleaned_data["lot_quantity_new"]
    lots = list(lines.lots)
    for index, line in enumerate(lots):
        if line.balance.pk == balance.pk:
            lots[index] = LotLine(balance, line.quantity + quantity)
            break
    else:
        lots.append(LotLine(balance, quantity))
    return _render(request, kind, form, Lines(lines.units, lots), key=key, problems=problems)


def _perform(request: HttpRequest, kind: str, data: dict, lines: Lines, key: str) -> StockOrder:
    actor, hospital = Actor(user=request.user), hospital_for(request)
    lots = [line.as_lot_quantity() for line in lines.lots]
    if kind == TRANSFER:
        return transfer_stock(actor=actor, hospital=hospital, to_location=data["to_location"],
                              from_location=data.get("from_location"), units=lines.units, lots=lots,
                              note=data["note"], idempotency_key=key)
    if kind == RETURN:
        return return_to_supplier(actor=actor, hospital=hospital, supplier=data["supplier"],
                                  reason_code=data["reason_code"], units=lines.units, lots=lots, note=data["note"],
                                  idempotency_key=key)
    if kind == RELEASE:
        return release_from_quarantine(actor=actor, hospital=hospital, to_location=data["to_location"],
                                       reason_code=data["reason_code"], units=lines.units, lots=lots,
                                       note=data["note"], idempotency_key=key)
    return scrap(actor=actor, hospital=hospital, reason_code=data["reason_code"], units=lines.units, lots=lots,
                 note=data["note"], idempotency_key=key)


def _posted_lines(request: HttpRequest) -> tuple[Lines, list[ShownProblem]]:
    """The units of the posted rows, in scan order, and the posted lots; a unit or lot balance that
    is not the hospital's, or a quantity that is no whole number from 1, is a problem."""
    ids = []
    for value in request.POST.getlist("units"):
        if value.isdigit() and int(value) not in ids:
            ids.append(int(value))
    found = _units(request).in_bulk(ids)
    problems = []
    if any(pk not in found for pk in ids):
        problems += problems_of(Refused(Refusal.NOT_FOUND, what="unit"))
    balance_ids = request.POST.getlist("lot_balance_line")
    quantities = request.POST.getlist("lot_quantity")
    balances = lot_balances(request).in_bulk([int(pk) for pk in balance_ids if pk.isdigit()])
    lots: list[LotLine] = []
    for pk, quantity in zip(balance_ids, quantities, strict=False):
        balance = balances.get(int(pk)) if pk.isdigit() else None
        if balance is None:
            problems += problems_of(Refused(Refusal.NOT_FOUND, what="lot"))
        elif not quantity.strip().isdigit() or not 1 <= int(quantity) <= MAX_LOT_QUANTITY:
            problems.append(ShownProblem("INVALID_REQUEST", _("Lot %(lot)s: the quantity must be a whole number from 1.")
                                         % {"lot": balance.lot}))
            lots.append(LotLine(balance, 1))
        else:
            lots.append(LotLine(balance, int(quantity)))
    return Lines([found[pk] for pk in ids if pk in found], lots), problems


def _units(request: HttpRequest) -> QuerySet:
    return StockScope.of(request.user).units().select_related("product", "location", "supplier")


def _by_unit(refused: Refused, units: list[Unit]) -> list[ShownProblem]:
    """The service's problems in the pages' words, each naming its unit by serial rather than by id."""
    serials = {unit.pk: f"SN {unit.serial}" for unit in units}
    return [
        ShownProblem(problem.code, worded(problem), serials.get(problem.item, "") if problem.item is not None else "")
        for problem in refused.problems
    ]


def cabinet_warnings(units: list[Unit]) -> list[str]:
    """What moving these units by a form does not tell their RFID cabinets: a unit still inside one
    leaves it without a door session, so the cabinet's next tag inventory reports it missing."""
    return [
        _("SN %(serial)s is still inside the RFID cabinet %(cabinet)s: take it out through the cabinet's door "
          "(badge) first, or the cabinet's next tag inventory reports it as missing.") % {
            "serial": unit.serial, "cabinet": unit.location.name}
        for unit in units
        if unit.status == UnitStatus.IN_CABINET and unit.location is not None
        and unit.location.kind == Location.Kind.SMART_CABINET
    ]


def _money(value: Decimal) -> str:
    return f"¥{value:,.2f}"


def _render(request: HttpRequest, kind: str, form: MoveForm, lines: Lines, *, key: str,
            problems: list[ShownProblem] = (), failed: dict | None = None, status: int = 200,
            lot_form: AddLotForm | None = None) -> HttpResponse:
    recent = visible_to(request.user, StockOrder.objects.filter(kind=kind)).select_related(
        "to_location", "supplier", "created_by").order_by("-occurred_at", "-pk")[:RECENT]
    return render(request, "web/moves/move.html", {
        "kind": kind, "page": PAGES[kind], "pages": PAGES, "form": form, "lines": lines, "key": key,
        "problems": list(problems), "rows": [(unit, (failed or {}).get(unit.pk, [])) for unit in lines.units],
        "lot_form": lot_form or AddLotForm(request=request), "recent": recent,
        "warnings": cabinet_warnings(lines.units), "line_count": len(lines.units) + len(lines.lots),
    }, status=status)


def _review(request: HttpRequest, kind: str, form: MoveForm, lines: Lines, key: str) -> HttpResponse:
    data = form.cleaned_data
    return render(request, "web/moves/review.html", {
        "kind": kind, "page": PAGES[kind], "form": form, "lines": lines, "key": key, "data": data,
        "reason": reason_label(data.get("reason_code")), "warnings": cabinet_warnings(lines.units),
        "total_value": _money(lines.value),
    })


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
            raise Refused(Refusal.NOT_FOUND, what="unit")
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
    if warnings := cabinet_warnings([unit]):
        message = f"{message}. {warnings[0]}"
    return scan_answer(ok=True, message=message, row=row, unit=unit.pk, warning=bool(warnings))


def _order(request: HttpRequest, pk: int) -> StockOrder:
    return get_object_or_404(
        visible_to(request.user, StockOrder.objects.select_related("hospital", "to_location", "supplier",
                                                                   "created_by")), pk=pk)


def _movements(order: StockOrder) -> QuerySet:
    return Movement.objects.filter(
        document_type=Movement.DocumentType.STOCK_ORDER, document_id=order.pk
    ).select_related("unit", "product", "from_location", "to_location").order_by("pk")


@web_page(STOCK_HANDLERS)
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """What one transfer, return or scrap did: every unit with where it came from and went."""
    order = _order(request, pk)
    movements = _movements(order)
    page = PAGES.get(order.kind)
    return render(request, "web/moves/order.html", {
        "order": order, "movements": movements, "page": page, "reason": reason_label(order.reason_code),
        "printable": order.kind in (TRANSFER, RETURN, SCRAP),
    })


@web_page(STOCK_HANDLERS)
def order_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The order's printable document with signature lines: 移库单, 退货单 or 报损单 (PDF)."""
    order = _order(request, pk)
    if order.kind not in (TRANSFER, RETURN, SCRAP):
        raise Http404
    with translation.override("zh-hans"):  # the printed documents are Chinese, like the reports
        reason = reason_label(order.reason_code)
    pdf = order_document_pdf(order, reason=reason)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{order.kind.lower()}-{order.pk}.pdf"'
    return response
