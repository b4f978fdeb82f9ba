"""The processing station (加工间) page: choose a definition and a station, see what FEFO proposes,
scan the members into a list, assemble, then print the pack's label; and a pack's page (its members
and where each went), with its label and break-up (拆包).

The scanned list lives in the form (hidden `scan_code` / `scan_quantity` pairs, a GS shown as ␝):
every Add posts the page back with one more row, so the page works without JavaScript and nothing is
stored before the pack is assembled. Assembly and break-up carry the form's idempotency key.
"""
import re

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import LabelPrint, Location, PackDefinition, Product
from inventory.selectors.processing import fefo_proposals, packs_visible_to
from inventory.selectors.scope import visible_to
from inventory.services import labels, processing
from inventory.web.access import STOCK_HANDLERS, web_page
from inventory.web.forms import GS_MARK
from inventory.web.operations import hospital_for, new_form_key, posted_key, scanned_code
from inventory.web.problems import ShownProblem, problems_of

MAX_ROWS = 200
MAX_QUANTITY = 100_000


def _definitions(request: HttpRequest) -> QuerySet:
    return visible_to(request.user, PackDefinition.objects.filter(is_current=True)).order_by("code")


def _stations(request: HttpRequest) -> QuerySet:
    return visible_to(request.user, Location.objects.filter(kind=Location.Kind.PROCESSING_STATION, is_active=True)) \
        .order_by("code")


class ChooseForm(forms.Form):
    definition = forms.ModelChoiceField(label=gettext_lazy("Pack definition"), queryset=PackDefinition.objects.none(),
                                        empty_label=gettext_lazy("Choose a definition"))
    station = forms.ModelChoiceField(label=gettext_lazy("Processing station"), queryset=Location.objects.none(),
                                     empty_label=gettext_lazy("Choose the station"))

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = _definitions(request)
        self.fields["station"].queryset = _stations(request)


def _rows(request: HttpRequest) -> list[tuple[str, int]]:
    """The scanned list posted back by the form, as (code as shown, quantity)."""
    codes = request.POST.getlist("scan_code")[:MAX_ROWS]
    quantities = request.POST.getlist("scan_quantity")[:MAX_ROWS]
    rows = []
    for code, quantity in zip(codes, quantities, strict=False):
        rows.append((code, int(quantity) if quantity.isdigit() and 0 < int(quantity) <= MAX_QUANTITY else 1))
    return rows


@web_page(STOCK_HANDLERS)
def station(request: HttpRequest) -> HttpResponse:
    """The station: GET shows the choice and the proposal; POST adds a scan, removes one, or assembles."""
    data = request.POST if request.method == "POST" else (request.GET or None)
    choose = ChooseForm(data, request=request)
    rows, problems, key = [], [], new_form_key("pack")
    chosen = choose.is_valid()
    if request.method == "POST":
        rows, key = _rows(request), request.POST.get("idempotency_key", key)
        step = request.POST.get("step", "add")
        if step.startswith("remove-") and step[7:].isdigit():
            index = int(step[7:])
            rows = [row for position, row in enumerate(rows) if position != index]
        elif step == "assemble" and chosen:
            try:
                pack = processing.assemble_pack(
                    actor=Actor(user=request.user), hospital=hospital_for(request),
                    definition=choose.cleaned_data["definition"], station=choose.cleaned_data["station"],
                    scans=[processing.MemberScan(scanned_code(request, code), quantity) for code, quantity in rows],
                    idempotency_key=posted_key(request, "pack"),
                )
            except Refused as refused:
                problems = problems_of(refused)
            else:
                messages.success(request, _("Pack %(serial)s assembled.") % {"serial": pack.unit.serial})
                return redirect("web:processing-pack", pk=pack.pk)
        elif step == "add":
            code = scanned_code(request, request.POST.get("code", ""))
            quantity = request.POST.get("quantity", "1")
            if code.strip() and len(rows) < MAX_ROWS:
                rows.append((code.replace("\x1d", GS_MARK), int(quantity) if quantity.isdigit()
                             and 0 < int(quantity) <= MAX_QUANTITY else 1))
    proposals = fefo_proposals(choose.cleaned_data["definition"], choose.cleaned_data["station"]) if chosen else []
    recent = packs_visible_to(request.user)[:10]
    return render(request, "web/processing/station.html", {
        "choose": choose, "chosen": chosen, "proposals": proposals, "rows": rows, "problems": problems,
        "key": key, "recent": recent,
    }, status=400 if problems else 200)


@web_page(STOCK_HANDLERS)
def pack_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One pack: identity, where it is, its members and where each went, its label prints."""
    pack = get_object_or_404(packs_visible_to(request.user), pk=pk)
    prints = LabelPrint.objects.filter(unit=pack.unit_id).select_related("printed_by")[:20]
    return render(request, "web/processing/pack.html", {
        "pack": pack, "members": list(pack.members.all()), "prints": prints, "key": new_form_key("unpack"),
        "symbologies": LabelPrint.Symbology.choices,
    })


@web_page(STOCK_HANDLERS)
@require_POST
def pack_label(request: HttpRequest, pk: int) -> HttpResponse:
    """The pack's label as a PDF (logged; a second print is a reprint)."""
    pack = get_object_or_404(packs_visible_to(request.user), pk=pk)
    symbology = request.POST.get("symbology", LabelPrint.Symbology.DATAMATRIX)
    if symbology not in LabelPrint.Symbology.values:
        symbology = LabelPrint.Symbology.DATAMATRIX
    pdf = labels.print_unit_labels(units=[pack.unit], user=request.user, symbology=symbology,
                                   reason=request.POST.get("reason", "")[:200])
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="pack-{pack.unit.serial}.pdf"'
    return response


@web_page(STOCK_HANDLERS)
@require_POST
def pack_break(request: HttpRequest, pk: int) -> HttpResponse:
    pack = get_object_or_404(packs_visible_to(request.user), pk=pk)
    try:
        processing.break_pack(actor=Actor(user=request.user), hospital=hospital_for(request), pack=pack,
                              idempotency_key=posted_key(request, "unpack"))
    except Refused as refused:
        for problem in problems_of(refused):
            messages.error(request, problem.detail)
    else:
        messages.success(request, _("Pack %(serial)s broken up: its members are back in stock.")
                         % {"serial": pack.unit.serial})
    return redirect("web:processing-pack", pk=pack.pk)


# --- definitions -----------------------------------------------------------------------------------

BLANK_LINES = 4
MAX_LINES = 200


def _line_rows(request: HttpRequest) -> list[dict]:
    """The definition's lines posted back (`line_product`, `line_quantity` in step, `line_optional` the
    indexes ticked); rows without a product are left out. A quantity that is no number stays as typed
    (the page says so); a number, even 0 or negative, goes to the service, which names the problem."""
    products = request.POST.getlist("line_product")[:MAX_LINES]
    quantities = request.POST.getlist("line_quantity")[:MAX_LINES]
    optional = set(request.POST.getlist("line_optional"))
    rows = []
    for index, (product, quantity) in enumerate(zip(products, quantities, strict=False)):
        text = quantity.strip()
        number = int(text) if text.lstrip("-").isdigit() and len(text) < 10 else text
        rows.append({"product": product, "quantity": number, "is_optional": str(index) in optional})
    return rows


def _rows_of(definition: PackDefinition) -> list[dict]:
    return [{"product": str(line.product_id), "quantity": line.quantity, "is_optional": line.is_optional}
            for line in definition.lines.all()]


@web_page(STOCK_HANDLERS)
def definitions(request: HttpRequest) -> HttpResponse:
    """Pack, kit and set definitions with every version; a form to write a new one or, starting from a
    version (`?from=<id>`), the next version of its code (definitions are never edited in place)."""
    products = visible_to(request.user, Product.objects.filter(is_active=True)).order_by("name", "pk")
    all_versions = visible_to(request.user, PackDefinition.objects.all()).select_related("created_by") \
        .prefetch_related("lines__product").order_by("code", "-version")
    problems, form = [], {"code": "", "name": "", "kind": PackDefinition.Kind.PACK, "rows": []}
    if request.method == "POST":
        form = {"code": request.POST.get("code", "").strip()[:32], "name": request.POST.get("name", "").strip()[:200],
                "kind": request.POST.get("kind", ""), "rows": [row for row in _line_rows(request) if row["product"]]}
        problems = _definition_form_problems(form, products)
        if not problems:
            by_pk = {str(product.pk): product for product in products.filter(
                pk__in=[row["product"] for row in form["rows"]])}
            try:
                definition = processing.save_definition(
                    user=request.user, hospital=hospital_for(request), code=form["code"], name=form["name"],
                    kind=form["kind"], lines=[processing.LineInput(by_pk[row["product"]], row["quantity"],
                                                                   row["is_optional"]) for row in form["rows"]],
                )
            except Refused as refused:
                problems = problems_of(refused)
            else:
                messages.success(request, _("%(code)s version %(version)s saved.")
                                 % {"code": definition.code, "version": definition.version})
                return redirect(f"{reverse('web:processing-definitions')}#definition-{definition.code}")
    elif (start := request.GET.get("from", "")).isdigit():
        source = get_object_or_404(all_versions, pk=start)
        form = {"code": source.code, "name": source.name, "kind": source.kind, "rows": _rows_of(source)}
    rows = form["rows"] + [{"product": "", "quantity": "", "is_optional": False}] * BLANK_LINES
    grouped = {}
    for definition in all_versions:
        grouped.setdefault(definition.code, []).append(definition)
    return render(request, "web/processing/definitions.html", {
        "grouped": grouped, "form": form, "rows": rows, "products": products, "problems": problems,
        "kinds": PackDefinition.Kind.choices,
    }, status=400 if problems else 200)


def _definition_form_problems(form: dict, products: QuerySet) -> list[ShownProblem]:
    """What the service cannot be asked: a missing code or name, an unknown kind or product, a
    quantity that is not a number. Zero, negative, twice and cycles are the service's to refuse."""
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", form["code"]):
        problems.append(ShownProblem("INVALID_REQUEST", _(
            "Code: letters, digits, '.', '_' or '-', at most 32, starting with a letter or digit.")))
    if not form["name"]:
        problems.append(ShownProblem("INVALID_REQUEST", _("Name: this field is required.")))
    if form["kind"] not in PackDefinition.Kind.values:
        problems.append(ShownProblem("INVALID_REQUEST", _("Kind: choose pack, kit or set.")))
    known = {str(pk) for pk in products.values_list("pk", flat=True)}
    for number, row in enumerate(form["rows"], start=1):
        if row["product"] not in known:
            problems.append(ShownProblem("INVALID_REQUEST", _("Line %(n)s: choose a product.") % {"n": number}))
        if not isinstance(row["quantity"], int):
            problems.append(ShownProblem("PACK_LINE_QUANTITY", _(
                "Line %(n)s: the quantity must be a whole number of at least 1.") % {"n": number}))
    return problems
