"""Purchasing (采购) pages: purchase orders, a new order by hand, closing one, the purchasing report, and
a product's prices (its timeline, and recording a price change).

Orders are decided by `services.purchasing` (the ordering rules, closing); deliveries against them
are received and accepted on the receiving pages. The report (网采率, delivery performance) is
`selectors.purchasing`, computed from the orders and the ledger.
"""
import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from inventory.actors import Actor
from inventory.errors import Refused
from inventory.models import (
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    Role,
    Supplier,
    SupplyAgreement,
    User,
    VbpContract,
)
from inventory.selectors.prices import price_timeline
from inventory.selectors.purchasing import delivery_performance, emergency_lines, platform_rate
from inventory.selectors.scope import visible_to
from inventory.services.prices import change_price
from inventory.services.purchasing import OrderLineInput, close_purchase_order, create_purchase_order
from inventory.services.vbp import contract_progress
from inventory.web.access import READERS, STOCK_HANDLERS, may, web_page
from inventory.web.listing import Sort, listing
from inventory.web.problems import ShownProblem, flash_problems, problems_of

LINE_ROWS = 6  # lines offered on the new-order form; more lines: a second order, or the API
ALL = "ALL"
SORTS = (
    Sort("number", ("number",)), Sort("supplier", ("supplier__name",)), Sort("ordered", ("ordered_at",)),
    Sort("promised", ("promised_date",)), Sort("status", ("status",)),
)


class OrderFilterForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)

    def __init__(self, data: object) -> None:
        super().__init__(data)
        self.fields["status"].choices = [("", _("Open or partly delivered")), *PurchaseOrder.Status.choices,
                                         (ALL, _("All"))]


@web_page(READERS)
def order_list(request: HttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET)
    status = form.cleaned_data.get("status") if form.is_valid() else ""
    orders = visible_to(request.user, PurchaseOrder.objects.all()).select_related("supplier").annotate(
        ordered_quantity=Sum("lines__quantity"), delivered_quantity=Sum("lines__delivered_quantity"),
    )
    if not status:
        orders = orders.filter(status__in=(PurchaseOrder.Status.OPEN, PurchaseOrder.Status.PARTLY_DELIVERED))
    elif status != ALL:
        orders = orders.filter(status=status)
    shown = listing(request, orders, sorts=SORTS, default="ordered")
    return render(request, "web/purchasing/list.html", {
        "form": form, "page": shown.page, "listing": shown, "may_order": may(request.user, STOCK_HANDLERS),
    })


@web_page(READERS)
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lines = PurchaseOrderLine.objects.select_related("product", "agreement", "emergency_by").order_by("line_no")
    order = get_object_or_404(
        visible_to(request.user, PurchaseOrder.objects.all()).select_related(
            "supplier", "created_by", "closed_by", "plan"
        ).prefetch_related(Prefetch("lines", lines)),
        pk=pk,
    )
    return render(request, "web/purchasing/order.html", {
        "order": order, "lines": order.lines.all(),
        "notes": order.delivery_notes.order_by("delivered_at", "pk"),
        "may_close": may(request.user, STOCK_HANDLERS) and order.is_open_for_delivery,
    })


@require_POST
@web_page(STOCK_HANDLERS)
def close_order(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(visible_to(request.user, PurchaseOrder.objects.all()), pk=pk)
    try:
        close_purchase_order(actor=Actor(user=request.user), order=order, reason=request.POST.get("reason", ""))
    except Refused as refused:
        flash_problems(request, refused)
    else:
        messages.success(request, _("Order %(number)s is closed.") % {"number": order.number})
    return redirect("web:purchase-order", pk=order.pk)


class NewOrderForm(forms.Form):
    supplier = forms.ModelChoiceField(label=gettext_lazy("Supplier"), queryset=Supplier.objects.none())
    promised_date = forms.DateField(
        label=gettext_lazy("Promised delivery date"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data: object, *, user: object) -> None:
        super().__init__(data, initial={"promised_date": timezone.localdate() + datetime.timedelta(days=3)})
        self.fields["supplier"].queryset = Supplier.objects.filter(
            is_active=True, agreements__hospital=user.hospital_id
        ).distinct().order_by("name")


class OrderLineForm(forms.Form):
    product = forms.ModelChoiceField(label=gettext_lazy("Product"), queryset=Product.objects.none(), required=False)
    quantity = forms.IntegerField(label=gettext_lazy("Quantity"), min_value=1, max_value=1_000_000, required=False)
    platform_reference = forms.CharField(label=gettext_lazy("Platform order reference"), max_length=64,
                                         required=False)
    emergency_reason = forms.CharField(label=gettext_lazy("Emergency reason (off-platform)"), max_length=500,
                                       required=False)
    nhsa_exemption_reason = forms.CharField(label=gettext_lazy("医保 code exemption reason"), max_length=500,
                                            required=False)

    def __init__(self, *args: object, user: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = visible_to(user, Product.objects.filter(is_active=True)).order_by(
            "internal_code"
        )

    def line(self) -> OrderLineInput | None:
        data = self.cleaned_data
        if not data.get("product") and not data.get("quantity"):
            return None
        if not data.get("product") or not data.get("quantity"):
            raise forms.ValidationError(_("A line needs a product and a quantity."))
        return OrderLineInput(
            product=data["product"], quantity=data["quantity"], platform_reference=data["platform_reference"],
            emergency_reason=data["emergency_reason"], nhsa_exemption_reason=data["nhsa_exemption_reason"],
        )


OrderLineFormSet = forms.formset_factory(OrderLineForm, extra=LINE_ROWS, max_num=LINE_ROWS, absolute_max=LINE_ROWS)


@web_page(STOCK_HANDLERS)
def new_order(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    form = NewOrderForm(data, user=request.user)
    lines = OrderLineFormSet(data, form_kwargs={"user": request.user}, prefix="lines")
    problems = []
    if data is not None:
        if form.is_valid() and lines.is_valid():
            try:
                inputs = [line for line in (row.line() for row in lines.forms) if line is not None]
                order = create_purchase_order(
                    actor=Actor(user=request.user), hospital=request.user.hospital, lines=inputs,
                    supplier=form.cleaned_data["supplier"], promised_date=form.cleaned_data["promised_date"],
                )
            except forms.ValidationError as error:
                problems = problems_of([ShownProblem("INVALID_REQUEST", message) for message in error.messages])
            except Refused as refused:
                problems = problems_of(refused)
            else:
                messages.success(request, _("Order %(number)s is placed.") % {"number": order.number})
                return redirect("web:purchase-order", pk=order.pk)
        else:
            problems = problems_of(form) + [
                problem for row in lines.forms for problem in problems_of(row)
            ]
    return render(request, "web/purchasing/new.html", {"form": form, "lines": lines, "problems": problems})


class PeriodForm(forms.Form):
    period_start = forms.DateField(label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        return data


@web_page(READERS)
def report(request: HttpRequest) -> HttpResponse:
    """网采率 per month and delivery performance per supplier for a period (default: this year)."""
    today = timezone.localdate()
    form = PeriodForm(request.GET or {"period_start": today.replace(month=1, day=1), "period_end": today})
    context: dict = {"form": form, "problems": []}
    if not form.is_valid() or request.user.hospital is None:
        context["problems"] = problems_of(form)
        return render(request, "web/purchasing/report.html", context)
    start, end = form.cleaned_data["period_start"], form.cleaned_data["period_end"]
    hospital = request.user.hospital
    context.update(
        shares=platform_rate(hospital=hospital, start=start, end=end),
        emergencies=emergency_lines(hospital=hospital, start=start, end=end),
        performance=delivery_performance(hospital=hospital, start=start, end=end),
    )
    return render(request, "web/purchasing/report.html", context)


# --- a product's prices: the timeline, and recording a change ---------------------------------------

PRICE_CHANGERS = frozenset({Role.ADMIN, Role.SPD_OPERATOR})


class PriceChangeForm(forms.Form):
    agreement = forms.ModelChoiceField(label=gettext_lazy("Agreement replaced"), queryset=SupplyAgreement.objects.none())
    new_price = forms.DecimalField(label=gettext_lazy("New price"), max_digits=12, decimal_places=2, min_value=0)
    effective_from = forms.DateField(label=gettext_lazy("Effective from"),
                                     widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=500)
    approved_by = forms.ModelChoiceField(label=gettext_lazy("Approved by"), queryset=User.objects.none())

    def __init__(self, data: object, *, product: Product) -> None:
        super().__init__(data, initial={"effective_from": timezone.localdate()})
        today = timezone.localdate()
        self.fields["agreement"].queryset = SupplyAgreement.objects.filter(
            product=product, is_active=True, valid_to__gte=today
        ).select_related("supplier").order_by("supplier__name", "valid_from")
        self.fields["approved_by"].queryset = User.objects.filter(
            hospital=product.hospital_id, is_active=True,
            groups__name__in=[role.value for role in PRICE_CHANGERS],
        ).distinct().order_by("username")


@web_page(READERS)
def product_prices(request: HttpRequest, pk: int) -> HttpResponse:
    """The product's price timeline (every agreement, with the change that started it); SPD operators
    and administrators record a price change here."""
    product = get_object_or_404(visible_to(request.user, Product.objects.all()).select_related("manufacturer"), pk=pk)
    may_change = may(request.user, PRICE_CHANGERS)
    form = PriceChangeForm(request.POST if request.method == "POST" and may_change else None, product=product)
    problems = []
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                change_price(
                    actor=Actor(user=request.user), agreement=data["agreement"], new_price=data["new_price"],
                    effective_from=data["effective_from"], reason=data["reason"], approved_by=data["approved_by"],
                )
            except Refused as refused:
                problems = problems_of(refused)
            else:
                messages.success(request, _("The price change is recorded."))
                return redirect("web:product-prices", pk=product.pk)
        else:
            problems = problems_of(form)
    return render(request, "web/purchasing/prices.html", {
        "product": product, "timeline": price_timeline(product), "today": timezone.localdate(), "form": form,
        "may_change": may_change, "problems": problems,
    })


@web_page(READERS)
def vbp_contracts(request: HttpRequest) -> HttpResponse:
    """VBP contracts (带量采购) binding the hospital: agreed vs used, and the time elapsed."""
    contracts = visible_to(request.user, VbpContract.objects.all(), "allocations__hospital").distinct().order_by(
        "-start_date", "pk"
    )
    rows = [
        (contract, [row for row in contract_progress(contract)
                    if row.hospital is None or request.user.hospital_id in (None, row.hospital.pk)])
        for contract in contracts[:100]
    ]
    return render(request, "web/purchasing/vbp.html", {"rows": rows})
