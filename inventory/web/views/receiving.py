"""Receiving (收货) and acceptance (验收) at the warehouse.

Two ways in: a delivery note already recorded (sent through the API, or entered here earlier) is
picked from the list or by scanning its number; or a supplier's delivery is entered here by
scanning each unit into a new note (a draft kept in the session until it is recorded). Either way
each scan shows at once which line it is and whether acceptance would accept it or why not
(`receiving.preview_note` / `preview_delivery`: the service's own checks, nothing written), and
"Finish acceptance" calls `accept_delivery_note`, which decides every line.
"""
import datetime
import uuid
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import DeliveryNote, Location, Product, Role, TrackingMode
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.selectors.units import resolve_scan
from inventory.services.receiving import (
    LineInput,
    LinePreview,
    accept_delivery_note,
    agreed_price,
    find_line,
    preview_delivery,
    preview_note,
    receive_delivery_note,
)
from inventory.web.access import STOCK_HANDLERS, may, web_page
from inventory.web.forms import ProductChoiceField
from inventory.web.operations import (
    hospital_for,
    new_form_key,
    posted_key,
    refused_answer,
    scan_answer,
    scanned_code,
    shown,
)
from inventory.web.problems import problems_of, wants_json

# Gift (赠送) lines: only these roles may mark one (the service refuses anyone else).
GIFT_DECIDERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})
DRAFTS = "spd_receiving_drafts"  # session: draft key → the delivery being scanned in
CHECKED = "spd_receiving_checked"  # session: note id → line numbers checked by a scan
KEPT_DRAFTS = 5
RECENT = 20


# --- forms ----------------------------------------------------------------------------------------


class DeliveryHeaderForm(forms.Form):
    supplier = forms.ModelChoiceField(label=gettext_lazy("Supplier"), queryset=None)
    number = forms.CharField(label=gettext_lazy("Delivery note number"), max_length=64,
                             widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    receiving_location = forms.ModelChoiceField(label=gettext_lazy("Received at"), queryset=None)
    temperature_c = forms.DecimalField(
        label=gettext_lazy("Arrival temperature °C (cold chain)"), required=False, max_digits=5, decimal_places=1,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["supplier"].queryset = StockScope.of(request.user).suppliers()
        self.fields["receiving_location"].queryset = _locations(request)

    def clean_number(self) -> str:
        return self.cleaned_data["number"].strip()


class LotLineForm(forms.Form):
    """A lot-tracked line typed from the delivery note: product, lot, expiry, quantity."""

    product = ProductChoiceField(label=gettext_lazy("Product"), queryset=Product.objects.none())
    lot = forms.CharField(label=gettext_lazy("Lot"), max_length=64)
    expiry = forms.DateField(label=gettext_lazy("Expiry"), widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.IntegerField(label=gettext_lazy("Quantity"), min_value=1, initial=1)
    unit_price = forms.DecimalField(
        label=gettext_lazy("Unit price"), required=False, min_value=0, max_digits=12, decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        help_text=gettext_lazy("Empty: the agreement price"),
    )

    def __init__(self, *args: object, hospital: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = Product.objects.filter(
            hospital=hospital, tracking=TrackingMode.LOT, is_active=True
        ).order_by("internal_code")


def _locations(request: HttpRequest) -> object:
    return visible_to(request.user, Location.objects.filter(is_active=True)).order_by("code")


# --- the list -------------------------------------------------------------------------------------


@web_page(STOCK_HANDLERS)
def note_list(request: HttpRequest) -> HttpResponse:
    notes = visible_to(request.user, DeliveryNote.objects.all()).select_related("supplier", "receiving_location")
    number = request.GET.get("number", "").strip()
    problems = []
    if number:
        notes = notes.filter(number__iexact=number)
        if not notes.exists():
            problems = problems_of(Refused(Refusal.NOT_FOUND, what=_("Delivery note %(number)s") % {"number": number}))
    return render(request, "web/receiving/list.html", {
        "awaiting": notes.filter(status=DeliveryNote.Status.RECEIVED).order_by("delivered_at", "pk"),
        "accepted": notes.filter(status=DeliveryNote.Status.ACCEPTED).order_by("-accepted_at", "-pk")[:RECENT],
        "number": number, "problems": problems,
    })


@web_page(STOCK_HANDLERS)
def find_note(request: HttpRequest) -> HttpResponse:
    """A scanned or typed delivery note number (GET `code`): its page when it names one note."""
    number = scanned_code(request, request.GET.get("code", ""))
    notes = visible_to(request.user, DeliveryNote.objects.filter(number__iexact=number)) if number else None
    matches = list(notes[:2]) if notes is not None else []
    if len(matches) == 1:
        url = reverse("web:receiving-note", args=[matches[0].pk])
    else:  # none, or one number used by two suppliers: the list shows them
        url = reverse("web:receiving") + "?" + _query(number=number)
    if wants_json(request):
        if not matches:
            what = _("Delivery note %(number)s") % {"number": number or "?"}
            return refused_answer(Refused(Refusal.NOT_FOUND, what=what))
        message = _("Opening delivery note %(number)s") % {"number": matches[0].number}
        return scan_answer(ok=True, message=message, redirect=url)
    return redirect(url)


def _query(**values: str) -> str:
    query = QueryDict(mutable=True)
    query.update(values)
    return query.urlencode()


# --- a new delivery, scanned in -------------------------------------------------------------------


@web_page(STOCK_HANDLERS)
def new_delivery(request: HttpRequest) -> HttpResponse:
    """Step 1: who delivers, the note's number, where it is received. Nothing is written yet."""
    try:
        hospital_for(request)
    except Refused as refused:
        return render(request, "web/receiving/new.html", {"problems": problems_of(refused)}, status=refused.status)
    if request.method == "POST":
        form = DeliveryHeaderForm(request.POST, request=request)
        if form.is_valid():
            key = uuid.uuid4().hex
            data = form.cleaned_data
            drafts = request.session.get(DRAFTS, {})
            for old in list(drafts)[:-KEPT_DRAFTS + 1]:
                drafts.pop(old)
            drafts[key] = {
                "supplier": data["supplier"].pk, "number": data["number"],
                "location": data["receiving_location"].pk,
                "temperature": str(data["temperature_c"]) if data["temperature_c"] is not None else "",
                "lines": [], "note": None,
            }
            request.session[DRAFTS] = drafts
            return redirect("web:receiving-draft", key=key)
    else:
        form = DeliveryHeaderForm(request=request)
    return render(request, "web/receiving/new.html", {"form": form, "problems": problems_of(form)})


class _Draft:
    """A delivery being scanned in: the header chosen in step 1 and the lines scanned so far."""

    def __init__(self, request: HttpRequest, key: str) -> None:
        self.request, self.key = request, key
        data = request.session.get(DRAFTS, {}).get(key)
        if data is None:
            raise Http404
        self.data = data
        self.hospital = hospital_for(request)
        scope = StockScope.of(request.user)
        self.supplier = get_object_or_404(scope.suppliers(), pk=data["supplier"])
        self.location = get_object_or_404(_locations(request), pk=data["location"])
        self.temperature = Decimal(data["temperature"]) if data["temperature"] else None

    @property
    def lines(self) -> list[dict]:
        return self.data["lines"]

    def save(self) -> None:
        self.request.session.modified = True

    def inputs(self) -> list[LineInput]:
        products = Product.objects.filter(hospital=self.hospital).in_bulk(
            {line["product"] for line in self.lines if line["product"]}
        )
        return [
            LineInput(
                Decimal(line["price"]), udi=line["udi"], product=products.get(line["product"]), lot=line["lot"],
                expiry=datetime.date.fromisoformat(line["expiry"]) if line["expiry"] else None,
                quantity=line["quantity"],
            )
            for line in self.lines
        ]

    def previews(self) -> list[LinePreview]:
        if not self.lines:
            return []
        return preview_delivery(hospital=self.hospital, supplier=self.supplier, lines=self.inputs(),
                                temperature_c=self.temperature)

    def price_for(self, product: Product | None, posted: str) -> Decimal:
        """The price typed with the scan, else the agreement's (0 without one: acceptance says why)."""
        if posted.strip():
            try:
                price = Decimal(posted.strip())
            except InvalidOperation:
                price = None
            if price is None or price < 0 or price != price.quantize(Decimal("0.01")):
                raise Refused(Refusal.INVALID_REQUEST, detail=_("the unit price must be an amount like 1200.00"))
            return price.quantize(Decimal("0.01"))
        if product is None:
            return Decimal("0.00")
        return agreed_price(hospital=self.hospital, supplier=self.supplier, product=product) or Decimal("0.00")


def _draft_context(draft: _Draft, **extra: object) -> dict:
    return {
        "draft": draft, "previews": draft.previews(), "key": draft.key,
        "lot_form": extra.pop("lot_form", None) or LotLineForm(hospital=draft.hospital),
        **extra,
    }


@web_page(STOCK_HANDLERS)
def draft(request: HttpRequest, key: str) -> HttpResponse:
    """Step 2: scan the units, add lot lines, then record the note (POST)."""
    try:
        current = _Draft(request, key)
    except Refused as refused:
        return render(request, "web/receiving/new.html", {"problems": problems_of(refused)}, status=refused.status)
    if current.data.get("note"):
        return redirect("web:receiving-note", pk=current.data["note"])
    if request.method != "POST":
        return render(request, "web/receiving/draft.html", _draft_context(current))
    try:
        note = receive_delivery_note(
            actor=Actor(user=request.user), hospital=current.hospital, supplier=current.supplier,
            number=current.data["number"], receiving_location=current.location, lines=current.inputs(),
            temperature_c=current.temperature, idempotency_key=f"web-receive-{key}",
        )
    except Refused as refused:
        context = _draft_context(current, problems=problems_of(refused))
        return render(request, "web/receiving/draft.html", context, status=refused.status)
    current.data["note"] = note.pk
    current.save()
    messages.success(request, _("Delivery note %(number)s is recorded with %(lines)s lines. Check the units and "
                                "finish the acceptance.") % {"number": note.number, "lines": len(current.lines)})
    return redirect("web:receiving-note", pk=note.pk)


@require_POST
@web_page(STOCK_HANDLERS)
def draft_scan(request: HttpRequest, key: str) -> HttpResponse:
    """One scanned unit (or lot UDI with a quantity) added to the draft, with acceptance's verdict."""
    try:
        current = _Draft(request, key)
        if current.data.get("note"):
            raise Refused(Refusal.INVALID_REQUEST, detail=_("this delivery note is already recorded"))
        code = scanned_code(request, request.POST.get("code", ""))
        if not code:
            raise Refused(Refusal.NOTHING_SCANNED)
        resolution = resolve_scan(current.hospital, code)  # an unreadable code is refused, not recorded
        for line_no, line in enumerate(current.lines, start=1):
            if line["udi"] == code:
                raise Refused(Refusal.INVALID_REQUEST, detail=_("this code is already on line %(line)s") % {
                    "line": line_no})
        quantity = 1
        if resolution.product is not None and resolution.product.tracking == TrackingMode.LOT:
            quantity = _quantity(request.POST.get("quantity", ""))
        price = current.price_for(resolution.product, request.POST.get("unit_price", ""))
    except Refused as refused:
        return _draft_refused(request, key, refused)
    current.lines.append({"udi": code, "product": None, "lot": "", "expiry": "", "quantity": quantity,
                          "price": str(price)})
    current.save()
    preview = current.previews()[-1]
    return _line_answer(request, key, preview, len(current.lines))


def _quantity(value: str) -> int:
    try:
        quantity = int(value.strip() or "1")
    except ValueError:
        quantity = 0
    if quantity < 1:
        raise Refused(Refusal.QUANTITY_INVALID)
    return quantity


def _line_answer(request: HttpRequest, key: str, preview: LinePreview, count: int) -> HttpResponse:
    message = _describe_preview(preview)
    if not wants_json(request):
        (messages.success if preview.accepted else messages.warning)(request, message)
        return redirect("web:receiving-draft", key=key)
    row = render_to_string("web/receiving/_draft_row.html", {"preview": preview, "key": key}, request=request)
    return scan_answer(ok=preview.accepted, message=message, problems=shown(preview.problems), status=200,
                       row=row, line_no=preview.line.line_no, count=count)


def _draft_refused(request: HttpRequest, key: str, refused: Refused) -> HttpResponse:
    if wants_json(request):
        return refused_answer(refused)
    for problem in problems_of(refused):
        messages.error(request, problem.detail)
    return redirect("web:receiving-draft", key=key)


def _describe_preview(preview: LinePreview) -> str:
    line = preview.line
    if line.product is None:
        what = _("unknown product")
    elif line.serial:
        what = f"{line.product.name} SN {line.serial}"
    else:
        what = _("%(product)s lot %(lot)s × %(quantity)s") % {
            "product": line.product.name, "lot": line.lot or "?", "quantity": line.quantity}
    if preview.accepted:
        return _("Line %(line)s: %(what)s — will be accepted") % {"line": line.line_no, "what": what}
    return _("Line %(line)s: %(what)s — will be rejected") % {"line": line.line_no, "what": what}


@require_POST
@web_page(STOCK_HANDLERS)
def draft_lot(request: HttpRequest, key: str) -> HttpResponse:
    """A lot line typed from the paper note (product, lot, expiry, quantity, price)."""
    try:
        current = _Draft(request, key)
    except Refused as refused:
        return _draft_refused(request, key, refused)
    form = LotLineForm(request.POST, hospital=current.hospital)
    if not form.is_valid():
        context = _draft_context(current, lot_form=form, problems=problems_of(form))
        return render(request, "web/receiving/draft.html", context, status=400)
    data = form.cleaned_data
    price = data["unit_price"]
    if price is None:
        price = agreed_price(hospital=current.hospital, supplier=current.supplier, product=data["product"])
    current.lines.append({
        "udi": "", "product": data["product"].pk, "lot": data["lot"].strip(), "expiry": data["expiry"].isoformat(),
        "quantity": data["quantity"], "price": str(price if price is not None else Decimal("0.00")),
    })
    current.save()
    preview = current.previews()[-1]
    (messages.success if preview.accepted else messages.warning)(request, _describe_preview(preview))
    return redirect("web:receiving-draft", key=key)


@require_POST
@web_page(STOCK_HANDLERS)
def draft_remove(request: HttpRequest, key: str, line_no: int) -> HttpResponse:
    current = _Draft(request, key)
    if current.data.get("note") is None and 1 <= line_no <= len(current.lines):
        current.lines.pop(line_no - 1)
        current.save()
        messages.success(request, _("Line %(line)s removed; the lines after it are renumbered.") % {"line": line_no})
    return redirect("web:receiving-draft", key=key)


@require_POST
@web_page(STOCK_HANDLERS)
def draft_discard(request: HttpRequest, key: str) -> HttpResponse:
    drafts = request.session.get(DRAFTS, {})
    if drafts.pop(key, None) is not None:
        request.session[DRAFTS] = drafts
        messages.success(request, _("The draft delivery was discarded; nothing was recorded."))
    return redirect("web:receiving")


# --- a recorded note: check by scanning, finish the acceptance ---------------------------------------


def _note(request: HttpRequest, pk: int) -> DeliveryNote:
    notes = visible_to(request.user, DeliveryNote.objects.select_related(
        "supplier", "receiving_location", "received_by", "accepted_by"))
    return get_object_or_404(notes, pk=pk)


def _checked(request: HttpRequest, note: DeliveryNote) -> set[int]:
    return set(request.session.get(CHECKED, {}).get(str(note.pk), []))


@web_page(STOCK_HANDLERS)
def note_detail(request: HttpRequest, pk: int) -> HttpResponse:
    note = _note(request, pk)
    return render(request, "web/receiving/note.html", _note_context(request, note))


def _note_context(request: HttpRequest, note: DeliveryNote, **extra: object) -> dict:
    context = {"note": note, "can_gift": may(request.user, GIFT_DECIDERS), **extra}
    if note.status == DeliveryNote.Status.ACCEPTED:
        lines = list(note.lines.select_related("product", "acceptance", "unit").order_by("line_no"))
        context["lines"] = lines
        context["accepted_count"] = sum(1 for line in lines if line.acceptance.decision == "ACCEPTED")
        context["rejected_count"] = len(lines) - context["accepted_count"]
        return context
    checked = _checked(request, note)
    previews = preview_note(note)
    context.update({
        "previews": previews, "checked": checked, "checked_count": len(checked), "line_count": len(previews),
        "locations": _locations(request), "key": extra.get("key") or new_form_key("accept"),
        "gifts": extra.get("gifts", set()),
    })
    return context


@require_POST
@web_page(STOCK_HANDLERS)
def note_scan(request: HttpRequest, pk: int) -> HttpResponse:
    """Which line a scanned unit is, and whether acceptance would accept it; the line is ticked."""
    note = _note(request, pk)
    try:
        if note.status == DeliveryNote.Status.ACCEPTED:
            raise Refused(Refusal.DELIVERY_ALREADY_ACCEPTED, number=note.number)
        code = scanned_code(request, request.POST.get("code", ""))
        if not code:
            raise Refused(Refusal.NOTHING_SCANNED)
        line = find_line(note, code)
        if line is None:
            raise Refused(Refusal.NOT_FOUND, what=_("This unit on delivery note %(number)s") % {"number": note.number})
    except Refused as refused:
        if wants_json(request):
            return refused_answer(refused)
        for problem in problems_of(refused):
            messages.error(request, problem.detail)
        return redirect("web:receiving-note", pk=note.pk)
    preview = next(p for p in preview_note(note) if p.line.line_no == line.line_no)
    all_checked = request.session.get(CHECKED, {})
    checked = set(all_checked.get(str(note.pk), [])) | {line.line_no}
    all_checked[str(note.pk)] = sorted(checked)
    request.session[CHECKED] = all_checked
    message = _describe_preview(preview)
    if not wants_json(request):
        (messages.success if preview.accepted else messages.warning)(request, message)
        return redirect("web:receiving-note", pk=note.pk)
    return scan_answer(ok=preview.accepted, message=message, problems=shown(preview.problems), status=200,
                       line_no=line.line_no, checked=len(checked))


@require_POST
@web_page(STOCK_HANDLERS)
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    """Finish the acceptance: every line accepted or rejected with its reasons (the service decides)."""
    note = _note(request, pk)
    gifts = {int(value) for value in request.POST.getlist("gift") if value.isdigit()}
    put_away_to = None
    try:
        key = posted_key(request, "accept")
        if wanted := request.POST.get("put_away_to", ""):
            put_away_to = _locations(request).filter(pk=wanted).first() if wanted.isdigit() else None
            if put_away_to is None:
                raise Refused(Refusal.NOT_FOUND, what=_("Location"))
        accepted = accept_delivery_note(actor=Actor(user=request.user), note=note, idempotency_key=key,
                                        gift_line_nos=frozenset(gifts), put_away_to=put_away_to)
    except Refused as refused:
        note.refresh_from_db()
        context = _note_context(request, note, problems=problems_of(refused), gifts=gifts)
        return render(request, "web/receiving/note.html", context, status=refused.status)
    records = [line.acceptance for line in accepted.lines.select_related("acceptance")]
    taken = sum(1 for record in records if record.decision == "ACCEPTED")
    messages.success(request, _("Acceptance of %(number)s finished: %(accepted)s accepted, %(rejected)s rejected.") % {
        "number": accepted.number, "accepted": taken, "rejected": len(records) - taken})
    all_checked = request.session.get(CHECKED, {})
    if all_checked.pop(str(note.pk), None) is not None:
        request.session[CHECKED] = all_checked
    return redirect("web:receiving-note", pk=note.pk)
