"""Use on a patient at the bedside or in the OR (使用登记), its charge and HIS status, and refunds.

The nurse first says for whom: the HIS encounter number, scanned from the wristband or typed (no
patient names; an identity number is refused before anything is scanned), the ordering department
(their own preselected), and optionally surgery and doctor; "next patient" clears it, keeping the
department (docs/nurse-pages.md). That context is carried
in the page's address, so every scan and lot use below is recorded against it; each scan calls
`consume_unit`, each lot use `consume_lot`, and the row of the new use, with its charge and its
HIS delivery status, appears at the top of today's list. A refund (`refund_consumption`) needs a
reason and puts the item back into stock or quarantine; it is reviewed first (what, the amount
refunded to the HIS, where the item goes) and done only when confirmed.

Idempotency: a scan's key is the page's token plus the code, so the same unit scanned twice on
one page (a scanner's double read) is recorded once; lot uses and refunds carry a key per form.
"""
import hashlib
import re

from django import forms
from django.contrib import messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import Charge, Consumption, Department, Location, LotBalance, Movement, Pack, PackMember
from inventory.selectors.processing import set_partners_of_uses
from inventory.selectors.scope import departments_of, visible_to
from inventory.selectors.stock import StockScope
from inventory.selectors.units import find_unit_by_udi
from inventory.services import processing
from inventory.services.consumption import ClinicalContext, consume_lot, consume_unit, refund_consumption
from inventory.templatetags.spd_web import money
from inventory.validators import is_his_reference, looks_like_personal_id
from inventory.web.access import web_page
from inventory.web.describe import REFUND_REASONS, reason_label
from inventory.web.operations import (
    BEDSIDE,
    hospital_for,
    new_form_key,
    posted_key,
    refused_answer,
    rehearse,
    scan_answer,
    scanned_code,
)
from inventory.web.problems import problems_of, wants_json


class ContextForm(forms.Form):
    """For whom and where: read from the address (GET), so every form of the page carries it."""

    encounter = forms.CharField(
        label=gettext_lazy("HIS encounter number"), max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none",
                                      "enterkeyhint": "go",
                                      "placeholder": gettext_lazy("Visit or admission number, no names")}),
    )
    department = forms.ModelChoiceField(label=gettext_lazy("Ordering department"), queryset=None, empty_label=None)
    surgery_id = forms.CharField(label=gettext_lazy("Surgery number"), max_length=64, required=False)
    surgery_name = forms.CharField(label=gettext_lazy("Surgery / procedure"), max_length=200, required=False)
    doctor = forms.CharField(label=gettext_lazy("Doctor (HIS code)"), max_length=64, required=False)

    def __init__(self, data: object, *, request: HttpRequest) -> None:
        super().__init__(data)
        self.fields["department"].queryset = departments_for(request)

    def clean_encounter(self) -> str:
        """The encounter as a wristband or a typed number gives it: a scanner's AIM symbology identifier
        (e.g. "]C0") is looked past; an identity number or anything but a HIS reference is refused here,
        before any item is scanned against it."""
        value = encounter_of(self.cleaned_data["encounter"])
        if looks_like_personal_id(value):
            raise forms.ValidationError(
                _("This looks like an identity number, which is never stored: scan the encounter barcode on the "
                  "wristband or type the HIS visit or admission number."), code=Refusal.LOOKS_LIKE_PERSONAL_ID.name)
        if not is_his_reference(value):
            raise forms.ValidationError(
                _("This is not an encounter number (1 to 64 letters, digits, '-', '_' or '.'): scan the encounter "
                  "barcode on the wristband again or type the HIS visit or admission number."),
                code=Refusal.INVALID_ENCOUNTER.name)
        return value

    def context(self) -> ClinicalContext:
        data = self.cleaned_data
        return ClinicalContext(encounter=data["encounter"].strip(), department=data["department"],
                               surgery_id=data["surgery_id"].strip(), surgery_name=data["surgery_name"].strip(),
                               doctor=data["doctor"].strip())


AIM_IDENTIFIER = re.compile(r"^\][A-Za-z][0-9A-Za-z]")


def encounter_of(scanned: str) -> str:
    """The encounter number a wristband barcode (or a typed number) carries: surrounding blanks and a
    leading AIM symbology identifier, which some scanners are set to send, are not part of it."""
    value = (scanned or "").strip()
    return AIM_IDENTIFIER.sub("", value, count=1).strip()


def departments_for(request: HttpRequest) -> QuerySet:
    """The departments the person may use stock for (`selectors.scope.departments_of`, as the service
    checks): a nurse's own; for the hospital-wide roles the hospital's."""
    departments = visible_to(request.user, Department.objects.all())
    if (own := departments_of(request.user)) is not None:
        departments = departments.filter(pk__in=own)
    return departments.order_by("code")


class LotUseForm(forms.Form):
    balance = forms.ModelChoiceField(label=gettext_lazy("Lot in the department"), queryset=None,
                                     empty_label=gettext_lazy("Choose product and lot"))
    quantity = forms.IntegerField(label=gettext_lazy("Quantity"), min_value=1, initial=1)

    def __init__(self, *args: object, request: HttpRequest, department: Department, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["balance"]
        field.queryset = lot_stock(request, department)
        field.label_from_instance = _lot_label


def lot_stock(request: HttpRequest, department: Department) -> QuerySet:
    """The lots of lot-tracked products on hand in the department's stores (not quarantined)."""
    return StockScope.of(request.user).lot_balances().filter(
        location__department=department, quantity__gt=0
    ).exclude(location__kind=Location.Kind.QUARANTINE).select_related("product", "location").order_by(
        "product__internal_code", "expiry", "lot")


def _lot_label(balance: LotBalance) -> str:
    expiry = f" · {balance.expiry:%Y-%m-%d}" if balance.expiry else ""
    return (f"{balance.product.internal_code} {balance.product.name} · {_('lot')} {balance.lot}{expiry} · "
            f"{balance.location.name} ({balance.quantity})")


class RefundForm(forms.Form):
    reason_code = forms.ChoiceField(label=gettext_lazy("Reason"))
    to = forms.ChoiceField(label=gettext_lazy("Put the item back into"), widget=forms.RadioSelect, initial="stock",
                           choices=(("stock", gettext_lazy("Stock")), ("quarantine", gettext_lazy("Quarantine"))))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason_code"].choices = [("", _("Choose the reason")), *REFUND_REASONS]


# --- the page -------------------------------------------------------------------------------------


@web_page(BEDSIDE)
def use(request: HttpRequest) -> HttpResponse:
    form = ContextForm(request.GET if "encounter" in request.GET else None, request=request)
    context = form.context() if form.is_bound and form.is_valid() else None
    if not form.is_bound:
        # "Next patient" keeps the department the nurse was recording for (?department=…).
        departments = departments_for(request)
        chosen = departments.filter(pk=request.GET["department"]).first() if request.GET.get(
            "department", "").isdigit() else None
        form.initial = {"department": chosen or departments.first()}
    return _render(request, form, context)


def _render(request: HttpRequest, form: ContextForm, context: ClinicalContext | None, *,
            lot_form: LotUseForm | None = None, problems: list = (), status: int = 200) -> HttpResponse:
    department = context.department if context else None
    if department is None and form.initial.get("department") is not None:
        department = form.initial["department"]
    if context and lot_form is None:
        lot_form = LotUseForm(request=request, department=context.department)
    return render(request, "web/bedside/use.html", {
        "form": form, "context": context, "lot_form": lot_form, "query": request.GET.urlencode(),
        "token": new_form_key("use"), "lot_key": new_form_key("use-lot"),
        "uses": with_set_partners(todays_uses(request, department)), "department": department,
        "problems": list(problems) or (problems_of(form) if form.is_bound else []),
    }, status=status)


def todays_uses(request: HttpRequest, department: Department | None) -> QuerySet:
    """Today's uses in the person's scope (of one department when given), newest first, with charges."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    uses = StockScope.of(request.user).consumptions().filter(occurred_at__gte=start)
    if department is not None:
        uses = uses.filter(department=department)
    return _with_charges(uses).order_by("-occurred_at", "-pk")


def with_set_partners(uses: QuerySet) -> list[Consumption]:
    """The uses, each with `set_partners`: the other components of the set it was one of (if any)."""
    uses = list(uses)
    partners = set_partners_of_uses(uses)
    for use in uses:
        use.set_partners = partners.get(use.pk, [])
    return uses


def _with_charges(uses: QuerySet) -> QuerySet:
    charges = Charge.objects.select_related("delivery").order_by("created_at", "pk")
    return uses.select_related("product", "unit", "department", "location", "recorded_by").prefetch_related(
        Prefetch("charges", charges))


def _context_from_post(request: HttpRequest) -> ClinicalContext:
    form = ContextForm(request.POST, request=request)
    if not form.is_valid():
        # An encounter refused by the form is refused with the service's own code (the API's words).
        codes = {error.code for error in form.errors.as_data().get("encounter", [])}
        if Refusal.LOOKS_LIKE_PERSONAL_ID.name in codes:
            raise Refused(Refusal.LOOKS_LIKE_PERSONAL_ID, field="encounter")
        if Refusal.INVALID_ENCOUNTER.name in codes:
            raise Refused(Refusal.INVALID_ENCOUNTER)
        raise Refused(Refusal.INVALID_REQUEST, detail="; ".join(p.detail for p in problems_of(form)))
    return form.context()


def _row(request: HttpRequest, consumption: Consumption) -> str:
    [use] = with_set_partners(_with_charges(Consumption.objects.filter(pk=consumption.pk)))
    return render_to_string("web/bedside/_use_row.html", {"use": use, "query": request.POST.get("query", "")},
                            request=request)


@require_POST
@web_page(BEDSIDE)
def consume_scan(request: HttpRequest) -> HttpResponse:
    """One scanned unit used on the page's encounter; answers with the use's row and its charge."""
    try:
        hospital = hospital_for(request)
        context = _context_from_post(request)
        code = scanned_code(request, request.POST.get("code", ""))
        if not code:
            raise Refused(Refusal.NOTHING_SCANNED)
        token = posted_key(request, "use")
        key = f"{token}-{hashlib.sha256(code.encode()).hexdigest()[:16]}"
        unit = find_unit_by_udi(hospital, code)
        if (pack := Pack.objects.filter(unit=unit, hospital=hospital).first()) is not None:
            # A pack's label: its members are used (and billed), on the pack's own page.
            return _to_pack(request, pack, context)
        consumption = consume_unit(actor=Actor(user=request.user), hospital=hospital, unit=unit, context=context,
                                   idempotency_key=key)
    except Refused as refused:
        if wants_json(request):
            return refused_answer(refused)
        for problem in problems_of(refused):
            messages.error(request, problem.detail)
        return _back(request)
    message = _("Used: %(product)s SN %(serial)s on %(encounter)s · charge %(amount)s") % {
        "product": consumption.product.name, "serial": unit.serial, "encounter": consumption.encounter,
        "amount": money(consumption.amount)}
    if not wants_json(request):
        messages.success(request, message)
        return _back(request)
    return scan_answer(ok=True, message=message, row=_row(request, consumption), consumption=consumption.pk)


@require_POST
@web_page(BEDSIDE)
def consume_lot_use(request: HttpRequest) -> HttpResponse:
    """A quantity of one lot used on the page's encounter (a plain form: the page reloads)."""
    try:
        hospital = hospital_for(request)
        context = _context_from_post(request)
        form = LotUseForm(request.POST, request=request, department=context.department)
        if not form.is_valid():
            raise Refused(Refusal.INVALID_REQUEST, detail="; ".join(p.detail for p in problems_of(form)))
        balance = form.cleaned_data["balance"]
        consumption = consume_lot(
            actor=Actor(user=request.user), hospital=hospital, product=balance.product, lot=balance.lot,
            quantity=form.cleaned_data["quantity"], location=balance.location, context=context,
            idempotency_key=posted_key(request, "use-lot"),
        )
    except Refused as refused:
        for problem in problems_of(refused):
            messages.error(request, problem.detail, extra_tags=f"problem {problem.code}")
        return _back(request)
    parts = consumption.whole_use()  # one per purchase price when the use spans cost layers
    messages.success(request, _("Used: %(product)s lot %(lot)s × %(quantity)s on %(encounter)s · charge %(amount)s") % {
        "product": consumption.product.name, "lot": consumption.lot, "quantity": sum(p.quantity for p in parts),
        "encounter": consumption.encounter, "amount": money(sum(p.amount for p in parts))})
    return _back(request)


def _to_pack(request: HttpRequest, pack: Pack, context: ClinicalContext) -> HttpResponse:
    location = pack.unit.location
    if location is None or location.department_id != context.department.pk:
        raise Refused(Refusal.UNIT_NOT_IN_DEPARTMENT, unit=pack.unit.serial, location=location or "—",
                      department=context.department)
    query = request.POST.get("query", "")
    url = reverse("web:bedside-pack", args=[pack.pk]) + (f"?{query}" if query else "")
    if wants_json(request):
        return scan_answer(ok=True, message=_("Pack %(serial)s: choose what is used.") % {"serial": pack.unit.serial},
                           redirect=url)
    return redirect(url)


def _usable_pack(request: HttpRequest, pk: int) -> Pack:
    """A pack in one of the person's departments (a nurse sees only hers)."""
    packs = Pack.objects.filter(hospital=hospital_for(request), unit__location__department__in=departments_for(request))
    return get_object_or_404(packs.select_related("unit__location", "unit__product", "definition"), pk=pk)


@web_page(BEDSIDE)
def pack_use(request: HttpRequest, pk: int) -> HttpResponse:
    """Use a scanned pack on the page's encounter: the whole pack, or the members ticked (`use_pack`).
    A pack with an expired member is locked: the page says which member, and nothing can be used."""
    pack = _usable_pack(request, pk)
    source = request.POST if request.method == "POST" else request.GET
    form = ContextForm(source if "encounter" in source else None, request=request)
    if not (form.is_bound and form.is_valid()):
        return redirect(reverse("web:bedside") + (f"?{request.GET.urlencode()}" if request.GET else ""))
    context, problems, status = form.context(), [], 200
    query = request.POST.get("query", "") if request.method == "POST" else request.GET.urlencode()
    if request.method == "POST":
        chosen = None
        if request.POST.get("step") != "all":
            chosen = [int(pk) for pk in request.POST.getlist("member") if pk.isdigit()]
        try:
            processing.use_pack(actor=Actor(user=request.user), hospital=hospital_for(request), pack=pack,
                                context=context, idempotency_key=posted_key(request, "use-pack"), member_ids=chosen)
        except Refused as refused:
            problems, status = problems_of(refused), refused.status
        else:
            messages.success(request, _("Used from pack %(serial)s on %(encounter)s.")
                             % {"serial": pack.unit.serial, "encounter": context.encounter})
            return redirect(reverse("web:bedside") + (f"?{query}" if query else ""))
    members = list(pack.members.filter(state=PackMember.State.LIVE).select_related("product", "unit").order_by("pk"))
    today = timezone.localdate()
    if not problems:
        expired = next((member for member in members if member.expiry and member.expiry < today), None)
        if expired is not None:  # said before the nurse tries: the service refuses the same way
            problems = problems_of(Refused(Refusal.PACK_MEMBER_EXPIRED, pack=pack.unit.serial,
                                           member=processing.member_name(expired), expiry=expired.expiry))
    return render(request, "web/bedside/pack.html", {
        "pack": pack, "members": members, "context": context, "query": query, "problems": problems,
        "key": request.POST.get("idempotency_key") if problems and request.method == "POST"
        else new_form_key("use-pack"), "today": today,
    }, status=status)


def _back(request: HttpRequest) -> HttpResponse:
    query = request.POST.get("query", "")
    return redirect(reverse("web:bedside") + (f"?{query}" if query else ""))


# --- refunds --------------------------------------------------------------------------------------


@web_page(BEDSIDE)
def refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Reverse a use (退费) with a reason; the item goes back to stock or to quarantine."""
    use = get_object_or_404(_with_charges(StockScope.of(request.user).consumptions()), pk=pk)
    query = request.GET.get("back", "") if request.method != "POST" else request.POST.get("query", "")
    if request.method != "POST":
        form = RefundForm()
        return _refund_page(request, use, form, new_form_key("refund"), query)
    form = RefundForm(request.POST)
    key = request.POST.get("idempotency_key", "")
    if not form.is_valid():
        return _refund_page(request, use, form, key, query, problems=problems_of(form), status=400)

    def do_refund() -> Location:
        refund_consumption(actor=Actor(user=request.user), consumption=use,
                           reason_code=form.cleaned_data["reason_code"],
                           to_quarantine=form.cleaned_data["to"] == "quarantine",
                           idempotency_key=posted_key(request, "refund"))
        return Movement.objects.filter(
            document_type=Movement.DocumentType.CONSUMPTION, document_id=use.pk, kind=Movement.Kind.UNCONSUME,
        ).select_related("to_location").latest("pk").to_location

    try:
        if request.POST.get("step") != "confirm":
            # The review: the refund is rehearsed, so the page can say where the item would go.
            destination = rehearse(do_refund)
            return _refund_page(request, use, form, key, query, review={
                "destination": destination, "reason": reason_label(form.cleaned_data["reason_code"]),
            })
        do_refund()
    except Refused as refused:
        return _refund_page(request, use, form, key, query, problems=problems_of(refused), status=refused.status)
    messages.success(request, _("Refunded: %(product)s on %(encounter)s; a refund of %(amount)s goes to the HIS.") % {
        "product": use.product.name, "encounter": use.encounter,
        "amount": money(sum(part.amount for part in use.whole_use()))})
    return redirect(reverse("web:bedside") + (f"?{query}" if query else ""))


def _refund_page(request: HttpRequest, use: Consumption, form: RefundForm, key: str, query: str, *,
                 problems: list = (), status: int = 200, review: dict | None = None) -> HttpResponse:
    return render(request, "web/bedside/refund.html", {
        "use": use, "form": form, "key": key, "query": query, "problems": list(problems), "review": review,
    }, status=status)
