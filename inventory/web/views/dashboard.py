"""The dashboard: what needs attention now, within the person's scope."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inventory.selectors.dashboard import dashboard as dashboard_figures
from inventory.selectors.stock import StockScope
from inventory.services.alerts import expiry_tiers
from inventory.web.access import web_page


@web_page()
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = StockScope.of(request.user)
    figures = dashboard_figures(scope, tiers=expiry_tiers())
    return render(request, "web/dashboard.html", {"figures": figures, "scope": scope})
