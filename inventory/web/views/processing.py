"""The processing station (加工间) page: choose a definition and a station, see what FEFO proposes,
scan the members into a list, assemble, then print the pack's label; and a pack's page (its members
and where each went), with its label and break-up (拆包).

The scanned list lives in the form (hidden `scan_code` / `scan_quantity` pairs, a GS shown as ␝):
every Add posts the page back with one more row, so the page works without JavaScript and nothing is
stored before the pack is assembled. Assembly and break-up carry the form's idempotency key.
"""
from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import LabelPrint, Location, PackDefinition
from inventory.selectors.processing import fefo_proposals, packs_visible_to
from inventory.selectors.scope import visible_to
from inventory.services import labels, processing
from inventory.web.access import STOCK_HANDLERS, web_page
from inventory.web.forms import GS_MARK
from inventory.web.operations import hospital_for, new_form_key, posted_key, scanned_code
from inventory.web.problems import problems_of

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
