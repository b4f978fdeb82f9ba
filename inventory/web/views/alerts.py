"""Alerts (预警): the list, and acknowledging and resolving one with a note.

Auditors read; everyone else who sees an alert may acknowledge it and resolve it
(`inventory.services.alerts` decides what is allowed and records who did it).
"""
from django.contrib import messages
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from inventory.errors import Refused
from inventory.models import Alert
from inventory.selectors.stock import StockScope
from inventory.services import alerts as alert_service
from inventory.web.access import ALERT_HANDLERS, may, web_page
from inventory.web.forms import ALL, UNRESOLVED, AcknowledgeForm, AlertFilterForm, ResolveForm
from inventory.web.listing import Sort, listing
from inventory.web.problems import flash_problems

# The list is not a table: the sort is chosen in the filter form (`AlertFilterForm.SORT_CHOICES`).
SORTS = (
    Sort("last_seen", ("last_seen_at",)),
    Sort("raised", ("first_raised_at",)),
    Sort("severity", ("severity_rank", "-last_seen_at")),
    Sort("kind", ("kind", "-last_seen_at")),
    Sort("status", ("status", "-last_seen_at")),
    Sort("occurrences", ("occurrences", "-last_seen_at")),
)
SEVERITY_RANK = Case(
    When(severity=Alert.Severity.INFO, then=Value(0)), When(severity=Alert.Severity.WARNING, then=Value(1)),
    default=Value(2), output_field=IntegerField(),
)


@web_page()
def alert_list(request: HttpRequest) -> HttpResponse:
    form = AlertFilterForm(request.GET)
    wanted = form.values()
    alerts = StockScope.of(request.user).alerts().select_related(
        "unit__product", "product", "location", "certificate", "device", "acknowledged_by", "resolved_by"
    )
    if wanted["status"] == UNRESOLVED:
        alerts = alerts.exclude(status=Alert.Status.RESOLVED)
    elif wanted["status"] != ALL:
        alerts = alerts.filter(status=wanted["status"])
    if wanted["kind"]:
        alerts = alerts.filter(kind=wanted["kind"])
    if wanted["severity"]:
        alerts = alerts.filter(severity=wanted["severity"])
    shown = listing(request, alerts.annotate(severity_rank=SEVERITY_RANK), sorts=SORTS, default="-last_seen")
    return render(request, "web/alerts/list.html", {
        "form": form, "page": shown.page, "listing": shown, "can_handle": may(request.user, ALERT_HANDLERS),
        "here": request.get_full_path(),
    })


@require_POST
@web_page(ALERT_HANDLERS)
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(StockScope.of(request.user).alerts(), pk=pk)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        flash_problems(request, form)
        return _back(request)
    try:
        alert_service.acknowledge(alert=alert, user=request.user, note=form.cleaned_data["note"])
    except Refused as refused:
        flash_problems(request, refused)
    else:
        messages.success(request, _("Alert acknowledged: %(alert)s") % {"alert": alert.get_kind_display()})
    return _back(request)


@require_POST
@web_page(ALERT_HANDLERS)
def resolve(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(StockScope.of(request.user).alerts(), pk=pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        flash_problems(request, form)
        return _back(request)
    try:
        alert_service.resolve(alert=alert, user=request.user, note=form.cleaned_data["note"])
    except Refused as refused:
        flash_problems(request, refused)
    else:
        messages.success(request, _("Alert resolved: %(alert)s") % {"alert": alert.get_kind_display()})
    return _back(request)


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the list as it was (filters, page), or to the plain list."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("web:alerts")
