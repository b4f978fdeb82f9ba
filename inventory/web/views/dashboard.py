"""The dashboard: what needs attention now, within the person's scope.

A nurse (the nurse role and no stock role) has her own home: her work is using items on patients
(使用登记) and her department's smart cabinets, not stock values; so her home leads there.
"""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inventory.models import Role, User
from inventory.selectors.dashboard import dashboard as dashboard_figures
from inventory.selectors.stock import StockScope
from inventory.services.alerts import expiry_tiers
from inventory.web.access import READERS, roles_of, web_page
from inventory.web.views.bedside import departments_for, todays_uses
from inventory.web.views.cabinets import _cabinets


def is_nurse_only(user: User) -> bool:
    """A nurse who holds no role that reads or handles the hospital's stock."""
    roles = roles_of(user)
    return Role.NURSE.value in roles and not roles & {str(role) for role in READERS}


@web_page()
def dashboard(request: HttpRequest) -> HttpResponse:
    if is_nurse_only(request.user):
        return _nurse_home(request)
    scope = StockScope.of(request.user)
    figures = dashboard_figures(scope, tiers=expiry_tiers())
    return render(request, "web/dashboard.html", {"figures": figures, "scope": scope})


def _nurse_home(request: HttpRequest) -> HttpResponse:
    department = departments_for(request).first()
    return render(request, "web/dashboard_nurse.html", {
        "department": department,
        "used_today": todays_uses(request, department).count() if department else 0,
        "cabinets": list(_cabinets(request).order_by("code")),
    })
