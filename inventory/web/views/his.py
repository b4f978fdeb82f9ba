"""Charges on their way to the HIS (the outbox, ChargeDelivery): which are failing and why.

Read only. The dashboard's "not reaching the HIS" count links here with `?status=FAILING`; a
delivery that gave up is resent from the admin (or `manage.py` on the relay's side).
"""
from django import forms
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from inventory.models import ChargeDelivery
from inventory.selectors.stock import StockScope
from inventory.web.access import READERS, web_page
from inventory.web.listing import Sort, listing

FAILING = "FAILING"  # failing or given up: what has not reached the HIS and will not by itself soon
ALL = "ALL"
SORTS = (
    Sort("charge", ("charge_id",)),
    Sort("encounter", ("charge__encounter",)),
    Sort("amount", ("charge__amount",)),
    Sort("status", ("status",)),
    Sort("attempts", ("attempts",)),
    Sort("failing_since", ("first_failed_at",)),
    Sort("next_attempt", ("next_attempt_at",)),
)


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False)

    def __init__(self, data: object) -> None:
        super().__init__(data)
        self.fields["status"].choices = [
            (FAILING, _("Not reaching the HIS")), *ChargeDelivery.Status.choices, (ALL, _("All")),
        ]

    def wanted_status(self) -> str:
        self.is_valid()
        return self.cleaned_data.get("status") or FAILING


@web_page(READERS)
def delivery_list(request: HttpRequest) -> HttpResponse:
    form = DeliveryFilterForm(request.GET)
    status = form.wanted_status()
    deliveries = StockScope.of(request.user).charge_deliveries().select_related(
        "charge__consumption__product", "charge__consumption__department")
    if status == FAILING:
        deliveries = deliveries.filter(Q(status=ChargeDelivery.Status.FAILED) | Q(status=ChargeDelivery.Status.GAVE_UP))
    elif status != ALL:
        deliveries = deliveries.filter(status=status)
    shown = listing(request, deliveries, sorts=SORTS, default="failing_since")
    return render(request, "web/his/list.html", {"form": form, "page": shown.page, "listing": shown})
