"""Requisitions (科室申领), the warehouse's work queue and par levels (基数) on the web.

- `/requisitions/` — the nurse's 申领 page, built for a phone (390 px) and a tablet: start a
  requisition for her department, see the status of her departments' requisitions.
- `/requisitions/<id>/` — one requisition: a draft takes products by scan, code or name (the
  scan field and the product suggestions every product field uses), a quantity in any packaging
  unit, and is submitted; the warehouse approves (per line), rejects or cancels a line's remainder.
- `/requisitions/queue/` — the warehouse's work queue: open requisitions, urgent first then the
  oldest; replenishment suggestions (recompute, turn into requisitions, dismiss) and proposed par
  levels (accept, dismiss).
- `/par-levels/` — par levels of a location × product, with who changed them last and when.

Every change is one service call (inventory.services.requisitions / replenishment); a refusal is
shown as the services word it. Creating and submitting carry the form's idempotency key, so a
double tap does it once.
"""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.errors import Refused
from inventory.models import (
    Department,
    ParLevel,
    ParLevelProposal,
    ReplenishmentSuggestion,
    Requisition,
)
from inventory.selectors import requisitions as selectors
from inventory.selectors.scope import departments_of, visible_to
from inventory.selectors.stock import StockScope
from inventory.services import replenishment
from inventory.services import requisitions as service
from inventory.services.idempotency import run_once
from inventory.web.access import CLINICAL, EVERYONE, READERS, STOCK_HANDLERS, may, web_page
from inventory.web.forms import GS, GS_MARK, ProductCodeField
from inventory.web.operations import hospital_for, new_form_key, posted_key, refused_answer, scan_answer
from inventory.web.problems import flash_problems, problems_of, wants_json

# The work queue and the replenishment books: the warehouse, SPD operators, administrators, auditors.
QUEUE_READERS = READERS
LIST_LIMIT = 100


def requesting_departments(request: HttpRequest) -> QuerySet:
    """The departments the person may request for: a nurse's own, the whole hospital's for the warehouse."""
    if not may(request.user, CLINICAL):
        return Department.objects.none()
    departments = visible_to(request.user, Department.objects.all())
    if (own := departments_of(request.user)) is not None:
        departments = departments.filter(pk__in=own)
    return departments.filter(locations__kind__in=service.DESTINATION_KINDS, locations__is_active=True).distinct() \
        .order_by("code")


class NewRequisitionForm(forms.Form):
    department = forms.ModelChoiceField(label=gettext_lazy("Department"), queryset=None, empty_label=None)
    urgency = forms.ChoiceField(label=gettext_lazy("Urgency"), choices=Requisition.Urgency.choices,
                                widget=forms.RadioSelect, initial=Requisition.Urgency.ROUTINE)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=500,
                           widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Optional")}))

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = requesting_departments(request)


class LineForm(forms.Form):
    code = ProductCodeField(label=gettext_lazy("Product"))
    quantity = forms.IntegerField(label=gettext_lazy("Quantity"), min_value=1, max_value=10**9, initial=1,
                                  widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1, "step": 1}))
    unit = forms.CharField(label=gettext_lazy("Packaging unit"), required=False, max_length=16,
                           widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Base unit")}))

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["code"]
        field.queryset = StockScope.of(request.user).products()
        field.widget.attrs.update({"data-suggest-url": reverse("web:product-suggestions"), "data-scan-field": "",
                                   "placeholder": _("Scan, or type a code or name")})

    def full_clean(self) -> None:
        # A scanned UDI as the services read it (scan-field.js sends the GS mark as a real GS).
        if self.data and "code" in self.data:
            data = self.data.copy()
            data["code"] = data["code"].replace(GS_MARK, GS).strip("\r\n")
            self.data = data
        super().full_clean()


# --- the nurse's page -----------------------------------------------------------------------------


@web_page(EVERYONE)
def requisition_list(request: HttpRequest) -> HttpResponse:
    """Her departments' requisitions, newest first, and a form to start one."""
    requisitions = selectors.requisitions_visible_to(request.user).order_by("-created_at", "-pk")
    status = request.GET.get("status", "")
    if status in Requisition.Status.values:
        requisitions = requisitions.filter(status=status)
    form = NewRequisitionForm(request=request)
    return render(request, "web/requisitions/list.html", {
        "requisitions": requisitions.prefetch_related("lines")[:LIST_LIMIT], "form": form,
        "can_request": form.fields["department"].queryset.exists(), "key": new_form_key("requisition"),
        "statuses": Requisition.Status.choices, "status": status,
    })


@require_POST
@web_page(CLINICAL)
def requisition_new(request: HttpRequest) -> HttpResponse:
    form = NewRequisitionForm(request.POST, request=request)
    if not form.is_valid():
        flash_problems(request, form)
        return redirect("web:requisitions")
    data = form.cleaned_data
    try:
        key = posted_key(request, "requisition")
        requisition, _ = run_once(
            hospital=hospital_for(request), key=key, operation="requisition.create",
            payload={"department": data["department"].pk, "urgency": data["urgency"], "note": data["note"]},
            perform=lambda: service.create_requisition(
                user=request.user, department=data["department"], urgency=data["urgency"], note=data["note"]),
        )
    except Refused as refused:
        flash_problems(request, refused)
        return redirect("web:requisitions")
    return redirect("web:requisition", pk=requisition.pk)


def _visible(request: HttpRequest, pk: int) -> Requisition:
    return get_object_or_404(selectors.requisitions_visible_to(request.user), pk=pk)


@web_page(EVERYONE)
def requisition_detail(request: HttpRequest, pk: int) -> HttpResponse:
    requisition = _visible(request, pk)
    lines = list(requisition.lines.select_related("product").prefetch_related("product__packaging_units")
                 .order_by("pk"))
    can_request = may(request.user, CLINICAL) and service.may_request_for(request.user, requisition.department)
    handles_stock = may(request.user, STOCK_HANDLERS)
    return render(request, "web/requisitions/detail.html", {
        "requisition": requisition, "lines": lines, "line_form": LineForm(request=request),
        "can_edit": can_request and requisition.status == Requisition.Status.DRAFT,
        "can_submit": can_request and requisition.status == Requisition.Status.DRAFT and bool(lines),
        "can_cancel": can_request and requisition.status in (
            Requisition.Status.DRAFT, Requisition.Status.SUBMITTED, Requisition.Status.APPROVED),
        "can_decide": handles_stock and requisition.status == Requisition.Status.SUBMITTED,
        "can_cancel_lines": can_request and requisition.status in (
            Requisition.Status.SUBMITTED, Requisition.Status.APPROVED, Requisition.Status.PICKING),
        "submit_key": new_form_key("requisition-submit"),
    })


@require_POST
@web_page(CLINICAL)
def requisition_add_line(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a product by scan, code or name; answers the scan field with JSON, a plain form with a page."""
    requisition = _visible(request, pk)
    here = reverse("web:requisition", args=[requisition.pk])
    form = LineForm(request.POST, request=request)
    if not form.is_valid():
        if wants_json(request):
            return scan_answer(ok=False, problems=problems_of(form), status=400)
        flash_problems(request, form)
        return redirect(here)
    data = form.cleaned_data
    try:
        line = service.add_line(requisition=requisition, user=request.user, product=data["code"],
                                quantity=data["quantity"], unit=data["unit"])
    except Refused as refused:
        if wants_json(request):
            return refused_answer(refused)
        flash_problems(request, refused)
        return redirect(here)
    message = _("Added: %(product)s × %(quantity)s") % {"product": line.product.name,
                                                         "quantity": line.requested_quantity}
    if wants_json(request):
        return scan_answer(ok=True, message=message, redirect=here)
    messages.success(request, message)
    return redirect(here)


@require_POST
@web_page(CLINICAL)
def requisition_remove_line(request: HttpRequest, pk: int, line: int) -> HttpResponse:
    requisition = _visible(request, pk)
    found = requisition.lines.filter(pk=line).first()
    if found is None:
        raise Http404
    try:
        service.remove_line(line=found, user=request.user)
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition", pk=requisition.pk)


@require_POST
@web_page(CLINICAL)
def requisition_cancel_line(request: HttpRequest, pk: int, line: int) -> HttpResponse:
    requisition = _visible(request, pk)
    found = requisition.lines.filter(pk=line).first()
    if found is None:
        raise Http404
    try:
        service.cancel_line_remainder(line=found, user=request.user, reason=request.POST.get("reason", ""))
        messages.success(request, _("The line's open remainder is cancelled."))
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition", pk=requisition.pk)


ACTIONS = ("submit", "approve", "reject", "cancel")


@require_POST
@web_page(CLINICAL)
def requisition_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Submit, approve (per-line quantities), reject or cancel; a refusal is shown on the page."""
    if action not in ACTIONS:
        raise Http404
    requisition = _visible(request, pk)
    reason = request.POST.get("reason", "")
    try:
        if action == "submit":
            run_once(
                hospital=hospital_for(request), key=posted_key(request, "requisition-submit"),
                operation="requisition.submit", payload={"requisition": requisition.pk},
                perform=lambda: service.submit_requisition(requisition=requisition, user=request.user),
            )
            messages.success(request, _("Submitted to the warehouse."))
        elif action in ("approve", "reject"):
            if not may(request.user, STOCK_HANDLERS):
                raise PermissionDenied
            if action == "approve":
                approved = {
                    line.pk: request.POST.get(f"approved-{line.pk}", line.requested_quantity)
                    for line in requisition.lines.all()
                }
                service.approve_requisition(requisition=requisition, user=request.user, approved=approved)
                messages.success(request, _("Approved."))
            else:
                service.reject_requisition(requisition=requisition, user=request.user, reason=reason)
                messages.success(request, _("Rejected."))
        else:
            service.cancel_requisition(requisition=requisition, user=request.user, reason=reason)
            messages.success(request, _("Cancelled."))
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition", pk=requisition.pk)


# --- the warehouse's work queue -------------------------------------------------------------------


@web_page(QUEUE_READERS)
def work_queue(request: HttpRequest) -> HttpResponse:
    queue = selectors.work_queue(selectors.requisitions_visible_to(request.user))[:LIST_LIMIT]
    suggestions = selectors.suggestions_visible_to(request.user).filter(
        status=ReplenishmentSuggestion.Status.OPEN).order_by("location__code", "product__internal_code") \
        .prefetch_related("product__packaging_units")
    proposals = selectors.proposals_visible_to(request.user).filter(
        status=ParLevelProposal.Status.PENDING).order_by("par_level__location__code")
    return render(request, "web/requisitions/queue.html", {
        "queue": queue, "counts": selectors.queue_counts(request.user),
        "suggestions": suggestions[:500], "proposals": proposals[:200],
        "can_act": may(request.user, STOCK_HANDLERS),
    })


@require_POST
@web_page(STOCK_HANDLERS)
def replenishment_recompute(request: HttpRequest) -> HttpResponse:
    try:
        result = replenishment.replenish(hospital=hospital_for(request))
        messages.success(request, _("%(suggestions)s suggestions, %(proposals)s proposed par levels.") % result.as_dict())
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition-queue")


@require_POST
@web_page(STOCK_HANDLERS)
def replenishment_requisition(request: HttpRequest) -> HttpResponse:
    """Turn the chosen suggestions into approved replenishment requisitions."""
    ids = [int(pk) for pk in request.POST.getlist("suggestion") if pk.isdigit() and len(pk) < 18]
    chosen = list(selectors.suggestions_visible_to(request.user).filter(pk__in=ids))
    if not chosen:
        messages.error(request, _("Choose at least one suggestion."))
        return redirect("web:requisition-queue")
    try:
        made = replenishment.requisition_suggestions(suggestions=chosen, user=request.user)
        messages.success(request, _("%(count)s replenishment requisitions made.") % {"count": len(made)})
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition-queue")


@require_POST
@web_page(STOCK_HANDLERS)
def suggestion_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    suggestion = get_object_or_404(selectors.suggestions_visible_to(request.user), pk=pk)
    try:
        replenishment.dismiss_suggestion(suggestion=suggestion, user=request.user)
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition-queue")


@require_POST
@web_page(STOCK_HANDLERS)
def proposal_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    proposal = get_object_or_404(selectors.proposals_visible_to(request.user), pk=pk)
    try:
        if decision == "accept":
            replenishment.accept_proposal(proposal=proposal, user=request.user)
            messages.success(request, _("The par level now follows the proposal."))
        elif decision == "dismiss":
            replenishment.dismiss_proposal(proposal=proposal, user=request.user)
        else:
            raise Http404
    except Refused as refused:
        flash_problems(request, refused)
    return redirect("web:requisition-queue")


# --- par levels -----------------------------------------------------------------------------------


class ParLevelForm(forms.Form):
    location = forms.ModelChoiceField(label=gettext_lazy("Location"), queryset=None)
    product = ProductCodeField(label=gettext_lazy("Product"))
    minimum = forms.IntegerField(label=gettext_lazy("Minimum"), min_value=0, max_value=10**9)
    target = forms.IntegerField(label=gettext_lazy("Replenish up to"), min_value=0, max_value=10**9, required=False)
    maximum = forms.IntegerField(label=gettext_lazy("Maximum"), min_value=0, max_value=10**9, required=False)

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        scope = StockScope.of(request.user)
        self.fields["location"].queryset = scope.locations().filter(
            kind__in=replenishment.PAR_LEVEL_KINDS, is_active=True).order_by("code")
        self.fields["product"].queryset = scope.products()
        self.fields["product"].widget.attrs["data-suggest-url"] = reverse("web:product-suggestions")


@web_page(EVERYONE)
def par_levels(request: HttpRequest) -> HttpResponse:
    """The par levels of the person's scope; warehouse staff and SPD operators add and change them."""
    levels = selectors.par_levels_visible_to(request.user).order_by("location__code", "product__internal_code")
    location = request.GET.get("location", "")
    if location.isdigit() and len(location) < 18:
        levels = levels.filter(location_id=int(location))
    can_edit = may(request.user, STOCK_HANDLERS)
    editing = None
    if can_edit and request.method == "POST":
        form = ParLevelForm(request.POST, request=request)
        editing = _editing(request, request.POST.get("par_level", ""))
        if form.is_valid():
            data = form.cleaned_data
            try:
                replenishment.save_par_level(
                    user=request.user, location=data["location"], product=data["product"], minimum=data["minimum"],
                    target=data["target"], maximum=data["maximum"], par_level=editing,
                )
                messages.success(request, _("Par level saved."))
                return redirect("web:par-levels")
            except Refused as refused:
                problems = problems_of(refused)
        else:
            problems = problems_of(form)
        status = 400
    else:
        editing = _editing(request, request.GET.get("edit", "")) if can_edit else None
        initial = {}
        if editing is not None:
            initial = {"location": editing.location, "product": editing.product.internal_code,
                       "minimum": editing.minimum, "target": editing.target, "maximum": editing.maximum}
        form, problems, status = ParLevelForm(request=request, initial=initial), [], 200
    return render(request, "web/requisitions/par_levels.html", {
        "levels": levels[:500], "form": form, "can_edit": can_edit, "editing": editing, "problems": problems,
        "locations": StockScope.of(request.user).locations().filter(kind__in=replenishment.PAR_LEVEL_KINDS)
        .order_by("code"), "location": location,
    }, status=status)


def _editing(request: HttpRequest, pk: str) -> ParLevel | None:
    if not pk.isdigit() or len(pk) > 18:
        return None
    return selectors.par_levels_visible_to(request.user).filter(pk=int(pk)).first()


@require_POST
@web_page(STOCK_HANDLERS)
def par_level_delete(request: HttpRequest, pk: int) -> HttpResponse:
    level = get_object_or_404(selectors.par_levels_visible_to(request.user), pk=pk)
    replenishment.delete_par_level(par_level=level, user=request.user)
    messages.success(request, _("Par level removed."))
    return redirect("web:par-levels")
