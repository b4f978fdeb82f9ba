"""Complaints and suspensions page (`/purchasing/complaints/`): record a written complaint with its
evidence, uphold or dismiss it, and lift a suspension with a reason (services.complaints)."""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import Complaint, Product, Role, Supplier, Suspension
from inventory.selectors.scope import visible_to
from inventory.services.complaints import decide_complaint, lift_suspension, record_complaint
from inventory.web.access import READERS, may, web_page
from inventory.web.problems import problems_of

RECORDERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR, Role.WAREHOUSE})
DECIDERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})


class ComplaintForm(forms.Form):
    supplier = forms.ModelChoiceField(label=gettext_lazy("Supplier"), queryset=Supplier.objects.none(), required=False)
    product = forms.ModelChoiceField(label=gettext_lazy("Product"), queryset=Product.objects.none(), required=False)
    received_on = forms.DateField(label=gettext_lazy("Received on"), widget=forms.DateInput(attrs={"type": "date"}))
    complainant = forms.CharField(label=gettext_lazy("Complainant"), max_length=200)
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    evidence = forms.CharField(label=gettext_lazy("Evidence"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    evidence_file = forms.FileField(label=gettext_lazy("Evidence file (PDF, PNG, JPEG)"), required=False)

    def __init__(self, data: object, files: object, *, request: HttpRequest) -> None:
        super().__init__(data, files, initial={"received_on": timezone.localdate()})
        self.fields["supplier"].queryset = Supplier.objects.filter(is_active=True).order_by("name")
        self.fields["product"].queryset = visible_to(request.user, Product.objects.all()).order_by("name")


@web_page(READERS)
def complaints(request: HttpRequest) -> HttpResponse:
    """The register of complaints and the suspensions; recording, deciding and lifting by the roles allowed."""
    may_record = may(request.user, RECORDERS)
    form = ComplaintForm(request.POST if request.method == "POST" else None,
                         request.FILES if request.method == "POST" else None, request=request)
    problems = []
    if request.method == "POST":
        if not may_record:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                record_complaint(
                    actor=Actor(user=request.user), hospital=request.user.hospital, supplier=data["supplier"],
                    product=data["product"], received_on=data["received_on"], complainant=data["complainant"],
                    subject=data["subject"], evidence=data["evidence"], evidence_file=data["evidence_file"],
                )
            except Refused as refused:
                problems = problems_of(refused)
            else:
                messages.success(request, _("The complaint is recorded."))
                return redirect("web:complaints")
        else:
            problems = problems_of(form)
    return render(request, "web/purchasing/complaints.html", {
        "form": form, "problems": problems, "may_record": may_record, "may_decide": may(request.user, DECIDERS),
        "complaints": visible_to(request.user, Complaint.objects.select_related(
            "supplier", "product", "recorded_by", "decided_by"))[:200],
        "suspensions": visible_to(request.user, Suspension.objects.select_related(
            "supplier", "product", "lifted_by").prefetch_related("complaints"))[:100],
        "outcomes": [Complaint.Outcome.UPHELD, Complaint.Outcome.DISMISSED],
    })


def _back_with(request: HttpRequest, refused: Refused) -> HttpResponse:
    for problem in refused.problems:
        messages.error(request, problem.detail)
    return redirect("web:complaints")


@web_page(READERS)
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "POST" or not may(request.user, DECIDERS):
        raise PermissionDenied
    complaint = get_object_or_404(visible_to(request.user, Complaint.objects.all()), pk=pk)
    try:
        decide_complaint(actor=Actor(user=request.user), complaint=complaint,
                         outcome=request.POST.get("outcome", ""), reason=request.POST.get("reason", ""))
    except Refused as refused:
        return _back_with(request, refused)
    messages.success(request, _("The complaint is decided."))
    return redirect("web:complaints")


@web_page(READERS)
def lift(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "POST" or not may(request.user, DECIDERS):
        raise PermissionDenied
    suspension = get_object_or_404(visible_to(request.user, Suspension.objects.all()), pk=pk)
    try:
        lift_suspension(actor=Actor(user=request.user), suspension=suspension, reason=request.POST.get("reason", ""))
    except Refused as refused:
        return _back_with(request, refused)
    messages.success(request, _("The suspension is lifted."))
    return redirect("web:complaints")
