"""Receiving (收货) and acceptance (验收) at the warehouse.

Two ways in: a delivery note already recorded (sent through the API, or entered here earlier) is
picked from the list or by scanning its number; or a supplier's delivery is entered here by
scanning each unit into a new note (a draft, ReceivingDraft: kept in the database for the
hospital, listed on the receiving page, resumed by anyone of the hospital, until it is recorded).
Either way each scan shows at once which line it is and whether acceptance would accept it or why
not (`receiving.preview_note` / `preview_delivery`: the service's own checks, nothing written).

On a recorded note each scan is recorded (`receiving.record_scan`: the line is verified, by whom,
when). "Review and finish" shows, before anything is decided, the lines that will be accepted, the
rejected ones and the units nobody scanned, with totals per product to compare with the paper
note; `accept_delivery_note` then decides — unscanned units stay open unless an SPD operator
accepts them without scanning, with a reason. The acceptance record (验收单) prints as a PDF.
"""
import uuid

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import DeliveryNote, Location, Product, ReceivingDraft, Role, TrackingMode
from inventory.selectors.receiving import (
    ACCEPT,
    REJECT,
    UNVERIFIED,
    AcceptanceReview,
    ReviewLine,
    acceptance_review,
    product_totals,
    review_line,
)
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.services import receiving_drafts as drafts
from inventory.services.acceptance_record import render_acceptance_record
from inventory.services.receiving import (
    UNSCANNED_DECIDERS,
    accept_delivery_note,
    record_scan,
)
from inventory.services.receiving_drafts import Draft
from inventory.web.access import STOCK_HANDLERS, may, web_page
from inventory.web.forms import ProductChoiceField
from inventory.web.listing import Sort, listing
from inventory.web.operations import (
    hospital_for,
    new_form_key,
    posted_key,
    refused_answer,
    scan_answer,
    scanned_code,
)
from inventory.web.problems import ShownProblem, problems_of, wants_json
from inventory.web.views.station import station_of

# Gift (赠送) lines: only these roles may mark one (the service refuses anyone else).
GIFT_DECIDERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})
# Accepting units nobody scanned: the same roles (services.receiving.UNSCANNED_DECIDERS).
UNSCANNED_ACCEPTERS = frozenset(UNSCANNED_DECIDERS)
RECENT = 20
FEED = 8  # the latest scans listed on a note's page, newest first


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
        locations = _locations(request)
        self.fields["receiving_location"].queryset = locations
        # The keeper's scanner station stands somewhere: receive there unless told otherwise.
        station = station_of(request)
        if station is not None and station.location_id and locations.filter(pk=station.location_id).exists():
            self.fields["receiving_location"].initial = station.location_id

    def clean_number(self) -> str:
        return self.cleaned_data["number"].strip()


class LotLineForm(forms.Form):
    """A lot-tracked line typed from the delivery note: product, lot, expiry, quantity."""

    product = ProductChoiceField(label=gettext_lazy("Product"), queryset=Product.objects.none())
    lot = forms.CharField(label=gettext_lazy("Lot"), max_length=64)
    expiry = forms.DateField(label=gettext_lazy("Expiry"), widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.IntegerField(label=gettext_lazy("Quantity"), min_value=1, initial=1)
    unit = forms.CharField(
        label=gettext_lazy("Unit"), required=False, max_length=16,
        help_text=gettext_lazy("The packaging unit delivered, e.g. 盒; empty: the base unit"),
    )
    unit_price = forms.DecimalField(
        label=gettext_lazy("Unit price"), required=False, min_value=0, max_digits=12, decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        help_text=gettext_lazy("Per unit delivered. Empty: the agreement price"),
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
    drafts = ReceivingDraft.objects.none()
    if request.user.hospital_id is not None:
        drafts = ReceivingDraft.objects.filter(hospital=request.user.hospital_id, note__isnull=True).select_related(
            "supplier", "receiving_location", "created_by", "updated_by")
    awaiting = listing(
        request,
        notes.filter(status__in=(DeliveryNote.Status.RECEIVED, DeliveryNote.Status.PARTLY_ACCEPTED)).annotate(
            line_count=Count("lines")),
        sorts=(Sort("number", ("number",)), Sort("supplier", ("supplier__name",)),
               Sort("delivered", ("delivered_at",)), Sort("location", ("receiving_location__code",)),
               Sort("lines", ("line_count",))),
        default="delivered",
    )
    return render(request, "web/receiving/list.html", {
        "awaiting": awaiting.page, "page": awaiting.page, "listing": awaiting,
        "accepted": notes.filter(status=DeliveryNote.Status.ACCEPTED).order_by("-accepted_at", "-pk")[:RECENT],
        "drafts": drafts, "number": number, "problems": problems,
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


# --- a new delivery, scanned in: a draft kept in the database ----------------------------------------


@web_page(STOCK_HANDLERS)
def new_delivery(request: HttpRequest) -> HttpResponse:
    """Step 1: who delivers, the note's number, where it is received. Only a draft is written."""
    try:
        hospital = hospital_for(request)
    except Refused as refused:
        return render(request, "web/receiving/new.html", {"problems": problems_of(refused)}, status=refused.status)
    if request.method == "POST":
        form = DeliveryHeaderForm(request.POST, request=request)
        if form.is_valid():
            data = form.cleaned_data
            draft = drafts.start_draft(
                user=request.user, hospital=hospital, key=uuid.uuid4().hex, supplier=data["supplier"],
                number=data["number"], receiving_location=data["receiving_location"],
                temperature_c=data["temperature_c"],
            )
            return redirect("web:receiving-draft", key=draft.key)
    else:
        form = DeliveryHeaderForm(request=request)
    return render(request, "web/receiving/new.html", {"form": form, "problems": problems_of(form)})


def _draft_of(request: HttpRequest, key: str) -> Draft:
    """The draft of the person's hospital with this key (404 if none)."""
    return Draft(get_object_or_404(drafts.drafts_of(hospital_for(request)), key=key))


def _draft_review(draft: Draft) -> AcceptanceReview:
    """The draft's lines as acceptance would decide them once recorded, with the per-product totals."""
    lines = [review_line(preview) for preview in draft.previews()]
    return AcceptanceReview(DeliveryNote(number=draft.number), lines, product_totals(lines))


def _draft_context(draft: Draft, **extra: object) -> dict:
    review = _draft_review(draft)
    return {
        "draft": draft, "review": review, "rows": list(reversed(review.lines)), "key": draft.key,
        "tally": _draft_tally(draft, review),
        "lot_form": extra.pop("lot_form", None) or LotLineForm(hospital=draft.hospital),
        **extra,
    }


def _draft_tally(draft: Draft, review: AcceptanceReview) -> dict[str, int]:
    """Scanned lines, what acceptance would accept and reject, and lines typed without a scan."""
    counts = review.tally
    counts["scanned"] = sum(1 for line in draft.lines if line["udi"])
    counts["unverified"] = len(draft.lines) - counts["scanned"]
    return counts


def _open_draft(request: HttpRequest, key: str) -> Draft | HttpResponse:
    try:
        current = _draft_of(request, key)
    except Refused as refused:
        return render(request, "web/receiving/new.html", {"problems": problems_of(refused)}, status=refused.status)
    if current.row.note_id:
        return redirect("web:receiving-note", pk=current.row.note_id)
    return current


@web_page(STOCK_HANDLERS)
def draft(request: HttpRequest, key: str) -> HttpResponse:
    """Step 2: scan the units, add lot lines, then record the note (POST)."""
    current = _open_draft(request, key)
    if isinstance(current, HttpResponse):
        return current
    if request.method != "POST":
        return render(request, "web/receiving/draft.html", _draft_context(current))
    try:
        note, current, recorded_now = drafts.record_draft(actor=Actor(user=request.user), draft=current)
    except Refused as refused:
        context = _draft_context(current, problems=problems_of(refused))
        return render(request, "web/receiving/draft.html", context, status=refused.status)
    if recorded_now:
        messages.success(request, _("Delivery note %(number)s is recorded with %(lines)s lines. Check the units and "
                                    "finish the acceptance.") % {"number": note.number, "lines": len(current.lines)})
    return redirect("web:receiving-note", pk=note.pk)


@require_POST
@web_page(STOCK_HANDLERS)
def draft_scan(request: HttpRequest, key: str) -> HttpResponse:
    """One scanned unit (or lot UDI with a quantity) added to the draft, with acceptance's verdict."""
    try:
        current = drafts.add_scanned_line(
            user=request.user, draft=_draft_of(request, key), code=scanned_code(request, request.POST.get("code", "")),
            quantity=request.POST.get("quantity", ""), unit_price=request.POST.get("unit_price", ""),
        )
    except Refused as refused:
        return _draft_refused(request, key, refused)
    return _draft_line_answer(request, current, len(current.lines))


def _draft_line_answer(request: HttpRequest, current: Draft, line_no: int) -> HttpResponse:
    """The verdict on one line of the draft; for the scan field also its row, the tally and the summary."""
    context = _draft_context(current)
    review = next(line for line in context["review"].lines if line.line.line_no == line_no)
    message = _describe(review)
    if not wants_json(request):
        (messages.success if review.accepted else messages.warning)(request, message)
        return redirect("web:receiving-draft", key=current.key)
    row = render_to_string("web/receiving/_draft_row.html", {"row": review, "key": current.key}, request=request)
    return scan_answer(ok=review.accepted, message=message, problems=_shown(review), status=200,
                       row=row, line_no=line_no, count=len(current.lines), **_live_parts(request, context))


def _live_parts(request: HttpRequest, context: dict) -> dict:
    """What receiving.js refreshes after each scan: the tally and the per-product summary."""
    summary = render_to_string("web/receiving/_product_summary.html", context, request=request)
    return {"tally": context["tally"], "summary": summary}


def _shown(review: ReviewLine) -> list[ShownProblem]:
    return [ShownProblem(reason["code"], reason["detail"], str(reason.get("item") or "")) for reason in review.reasons]


def _draft_refused(request: HttpRequest, key: str, refused: Refused) -> HttpResponse:
    if wants_json(request):
        return refused_answer(refused)
    for problem in problems_of(refused):
        messages.error(request, problem.detail)
    return redirect("web:receiving-draft", key=key)


def _describe(review: ReviewLine) -> str:
    line = review.line
    if line.product is None:
        what = _("unknown product")
    elif line.serial:
        what = f"{line.product.name} SN {line.serial}"
    else:
        what = _("%(product)s lot %(lot)s × %(quantity)s") % {
            "product": line.product.name, "lot": line.lot or "?", "quantity": line.quantity}
    if review.verdict == UNVERIFIED:
        return _("Line %(line)s: %(what)s — not scanned yet") % {"line": line.line_no, "what": what}
    if review.accepted:
        return _("Line %(line)s: %(what)s — will be accepted") % {"line": line.line_no, "what": what}
    return _("Line %(line)s: %(what)s — will be rejected") % {"line": line.line_no, "what": what}


@require_POST
@web_page(STOCK_HANDLERS)
def draft_lot(request: HttpRequest, key: str) -> HttpResponse:
    """A lot line typed from the paper note (product, lot, expiry, quantity, price)."""
    current = _open_draft(request, key)
    if isinstance(current, HttpResponse):
        return current
    form = LotLineForm(request.POST, hospital=current.hospital)
    if not form.is_valid():
        context = _draft_context(current, lot_form=form, problems=problems_of(form))
        return render(request, "web/receiving/draft.html", context, status=400)
    data = form.cleaned_data
    try:
        current = drafts.add_lot_line(
            user=request.user, draft=current, product=data["product"], lot=data["lot"], expiry=data["expiry"],
            quantity=data["quantity"], unit=data["unit"], unit_price=data["unit_price"],
        )
    except Refused as refused:
        context = _draft_context(current, lot_form=form, problems=problems_of(refused))
        return render(request, "web/receiving/draft.html", context, status=400)
    return _draft_line_answer(request, current, len(current.lines))


@require_POST
@web_page(STOCK_HANDLERS)
def draft_quantity(request: HttpRequest, key: str, line_no: int) -> HttpResponse:
    """Correct the quantity of a lot line after its scan (the count on the box, not on the label)."""
    try:
        current = drafts.set_line_quantity(user=request.user, draft=_draft_of(request, key), line_no=line_no,
                                           quantity=request.POST.get("quantity", ""))
    except Refused as refused:
        return _draft_refused(request, key, refused)
    return _draft_line_answer(request, current, line_no)


@require_POST
@web_page(STOCK_HANDLERS)
def draft_remove(request: HttpRequest, key: str, line_no: int) -> HttpResponse:
    if drafts.remove_line(user=request.user, draft=_draft_of(request, key), line_no=line_no):
        messages.success(request, _("Line %(line)s removed; the lines after it are renumbered.") % {
            "line": line_no})
    return redirect("web:receiving-draft", key=key)


@web_page(STOCK_HANDLERS)
def draft_discard(request: HttpRequest, key: str) -> HttpResponse:
    """GET asks to confirm; POST throws the draft away (a recorded note stays)."""
    current = _open_draft(request, key)
    if isinstance(current, HttpResponse):
        return current
    if request.method != "POST":
        return render(request, "web/receiving/discard.html", {"draft": current, "key": key,
                                                              "count": len(current.lines)})
    if drafts.discard_draft(draft=current):
        messages.success(request, _("The draft delivery %(number)s was discarded; nothing was recorded.") % {
            "number": current.number})
    return redirect("web:receiving")


# --- a recorded note: check by scanning, review, finish the acceptance, print the record -------------


def _note(request: HttpRequest, pk: int) -> DeliveryNote:
    notes = visible_to(request.user, DeliveryNote.objects.select_related(
        "hospital", "supplier", "receiving_location", "received_by", "accepted_by"))
    return get_object_or_404(notes, pk=pk)


@web_page(STOCK_HANDLERS)
def note_detail(request: HttpRequest, pk: int) -> HttpResponse:
    note = _note(request, pk)
    return render(request, "web/receiving/note.html", _note_context(request, note))


def _note_context(request: HttpRequest, note: DeliveryNote, **extra: object) -> dict:
    review = acceptance_review(note)
    scans = sorted((line for line in review.lines if line.scanned), key=lambda r: r.line.scanned_at, reverse=True)
    return {
        "note": note, "review": review, "tally": review.tally, "feed": scans[:FEED],
        "is_open": note.status != DeliveryNote.Status.ACCEPTED,
        "can_decide_unscanned": may(request.user, UNSCANNED_ACCEPTERS), "can_gift": may(request.user, GIFT_DECIDERS),
        **extra,
    }


@require_POST
@web_page(STOCK_HANDLERS)
def note_scan(request: HttpRequest, pk: int) -> HttpResponse:
    """A unit scanned against the note: its line is verified (who, when) and its verdict shown."""
    note = _note(request, pk)
    try:
        code = scanned_code(request, request.POST.get("code", ""))
        if not code:
            raise Refused(Refusal.NOTHING_SCANNED)
        line = record_scan(actor=Actor(user=request.user), note=note, code=code)
    except Refused as refused:
        if wants_json(request):
            return refused_answer(refused)
        for problem in problems_of(refused):
            messages.error(request, problem.detail)
        return redirect("web:receiving-note", pk=note.pk)
    context = _note_context(request, note)
    review = next(row for row in context["review"].lines if row.line.line_no == line.line_no)
    message = _describe(review)
    if not wants_json(request):
        (messages.success if review.accepted else messages.warning)(request, message)
        return redirect("web:receiving-note", pk=note.pk)
    parts = {"review_line": review, "row": review, **context}
    return scan_answer(
        ok=review.accepted, message=message, problems=_shown(review), status=200, line_no=line.line_no,
        checked=context["tally"]["scanned"],
        row=render_to_string("web/receiving/_note_row.html", parts, request=request),
        feed=render_to_string("web/receiving/_feed_item.html", parts, request=request),
        **_live_parts(request, context),
    )


@web_page(STOCK_HANDLERS)
def review(request: HttpRequest, pk: int) -> HttpResponse:
    """Before the decision: what will be accepted, rejected and left open, with totals per product."""
    note = _note(request, pk)
    if note.status == DeliveryNote.Status.ACCEPTED:
        return redirect("web:receiving-note", pk=note.pk)
    return render(request, "web/receiving/review.html", _review_context(request, note))


def _review_context(request: HttpRequest, note: DeliveryNote, **extra: object) -> dict:
    context = _note_context(request, note)
    lines = context["review"].lines
    context.update({
        "will_accept": [row for row in lines if not row.decided and row.verdict == ACCEPT],
        "will_reject": [row for row in lines if not row.decided and row.verdict == REJECT],
        "unverified": [row for row in lines if row.verdict == UNVERIFIED],
        "decided": [row for row in lines if row.decided],
        "locations": _locations(request), "key": extra.pop("key", None) or new_form_key("accept"),
        "gifts": extra.pop("gifts", set()), **extra,
    })
    return context


@require_POST
@web_page(STOCK_HANDLERS)
def accept(request: HttpRequest, pk: int) -> HttpResponse:
    """The decision: open lines accepted or rejected with their reasons (the service decides);
    unscanned units stay open unless an SPD operator accepts them without scanning, with a reason."""
    note = _note(request, pk)
    gifts = {int(value) for value in request.POST.getlist("gift") if value.isdigit()}
    accept_unscanned = request.POST.get("accept_unscanned") == "1"
    put_away_to = None
    try:
        key = posted_key(request, "accept")
        if wanted := request.POST.get("put_away_to", ""):
            put_away_to = _locations(request).filter(pk=wanted).first() if wanted.isdigit() else None
            if put_away_to is None:
                raise Refused(Refusal.NOT_FOUND, what=_("Location"))
        accepted = accept_delivery_note(
            actor=Actor(user=request.user), note=note, idempotency_key=key, gift_line_nos=frozenset(gifts),
            put_away_to=put_away_to, accept_unscanned=accept_unscanned,
            unscanned_reason=request.POST.get("unscanned_reason", ""),
        )
    except Refused as refused:
        note.refresh_from_db()
        if note.status == DeliveryNote.Status.ACCEPTED:
            context = _note_context(request, note, problems=problems_of(refused))
            return render(request, "web/receiving/note.html", context, status=refused.status)
        context = _review_context(request, note, problems=problems_of(refused), gifts=gifts)
        return render(request, "web/receiving/review.html", context, status=refused.status)
    tally = acceptance_review(accepted).tally
    values = {"number": accepted.number, "accepted": tally["accept"], "rejected": tally["reject"],
              "open": tally["unverified"]}
    if tally["unverified"]:
        messages.warning(request, _("Acceptance of %(number)s: %(accepted)s accepted, %(rejected)s rejected; "
                                    "%(open)s units not scanned stay open.") % values)
    else:
        messages.success(request, _("Acceptance of %(number)s finished: %(accepted)s accepted, %(rejected)s "
                                    "rejected.") % values)
    return redirect("web:receiving-note", pk=note.pk)


@web_page(STOCK_HANDLERS)
def acceptance_record(request: HttpRequest, pk: int) -> HttpResponse:
    """The acceptance record (验收单) as a PDF to print and sign."""
    note = _note(request, pk)
    pdf = render_acceptance_record(acceptance_review(note), printed_by=request.user)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="acceptance-{note.number}.pdf"'
    return response
