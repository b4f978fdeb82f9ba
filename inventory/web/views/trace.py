"""The unit trace page (追溯), and the scan lookup that leads to it from any scan field."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from inventory.errors import Refusal, Refused
from inventory.models import Hospital, Unit
from inventory.selectors.processing import packs_of_member, set_partners
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.selectors.trace import unit_timeline
from inventory.selectors.units import resolve_scan
from inventory.web.access import READERS, STOCK_HANDLERS, may, web_page
from inventory.web.problems import problems_of, scan_response, wants_json
from inventory.web.views.station import gs_substitute_of


@web_page()
def unit_trace(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything about one unit, oldest first; another hospital's unit (or, for a nurse, one that
    never was in their departments) does not exist here."""
    unit = get_object_or_404(StockScope.of(request.user).traceable_units(), pk=pk)
    return render(request, "web/trace/unit.html", {
        "timeline": unit_timeline(unit), "reads_history": may(request.user, READERS),
        "memberships": packs_of_member(unit), "set_partners": set_partners(unit),
        "opens_recalls": may(request.user, STOCK_HANDLERS),
    })


@web_page()
def scan(request: HttpRequest) -> HttpResponse:
    """Resolve a scanned code (GET `code`) to its unit and open its trace.

    scan-field.js asks for JSON and gets `{ok, redirect}` or `{ok: false, problems}`; without
    JavaScript the browser is redirected, or shown the problems with the field to scan again.
    """
    code = request.GET.get("code", "")
    try:
        unit = _unit_of_scan(request, code)
    except Refused as refused:
        problems = problems_of(refused)
        if wants_json(request):
            return scan_response(ok=False, problems=problems, status=refused.status)
        return render(request, "web/trace/scan.html", {"code": code, "problems": problems}, status=refused.status)
    url = reverse("web:unit-trace", args=[unit.pk])
    if wants_json(request):
        return scan_response(ok=True, message=_("Found: %(unit)s") % {"unit": _describe(unit)}, redirect=url)
    return redirect(url)


def _unit_of_scan(request: HttpRequest, code: str) -> Unit:
    if not code.strip():
        raise Refused(Refusal.NOTHING_SCANNED)
    separator = gs_substitute_of(request)
    scope = StockScope.of(request.user)
    # An alliance administrator belongs to no hospital: look in each one they see.
    hospitals = [request.user.hospital] if request.user.hospital_id else list(
        visible_to(request.user, Hospital.objects.all(), "pk")
    )
    product_known = False
    for hospital in hospitals:
        resolution = resolve_scan(hospital, code, separator=separator)
        if resolution.unit is not None and scope.traceable_units().filter(pk=resolution.unit.pk).exists():
            return resolution.unit
        product_known = product_known or resolution.product is not None
        udi = resolution.udi
    if not hospitals or product_known:
        raise Refused(Refusal.NOT_FOUND, what=_("Unit"))
    raise Refused(Refusal.PRODUCT_UNKNOWN, di=udi.di)


def _describe(unit: Unit) -> str:
    return f"{unit.product.name} SN {unit.serial}"
