"""The scanner station a browser is at (a keyboard-wedge scanner's Device), chosen once per workstation.

Some wedge scanners cannot send the GS1 group separator through a keyboard; they are configured to
send a substitute character instead (Device.config["gs_substitute"], e.g. "|"). The station chosen
here is kept in a cookie, and its substitute is handed to scan-field.js and to `resolve_scan`.
"""
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from devices.identification import gs_substitute_problem
from devices.models import Device
from inventory.selectors.scope import visible_to
from inventory.web.access import web_page
from inventory.web.forms import StationForm

COOKIE = "spd_station"
ONE_YEAR = 365 * 24 * 3600


def stations_for(request: HttpRequest) -> QuerySet:
    return visible_to(request.user, Device.objects.filter(kind=Device.Kind.WEDGE_SCANNER, is_active=True)).order_by(
        "code"
    )


def station_of(request: HttpRequest) -> Device | None:
    """The scanner station this browser has chosen, if it is still one of the person's hospital."""
    cached = getattr(request, "_web_station", False)
    if cached is not False:
        return cached
    value = request.COOKIES.get(COOKIE, "")
    station = stations_for(request).filter(pk=int(value)).first() if value.isdigit() else None
    request._web_station = station
    return station


def gs_substitute_of(request: HttpRequest) -> str | None:
    """The chosen station's GS substitute; None when it has none, or one that occurs in UDI data
    (configured before that was checked): replacing it would change the scanned codes."""
    station = station_of(request)
    if station is None or station.gs_substitute is None or gs_substitute_problem(station.gs_substitute):
        return None
    return station.gs_substitute


@web_page()
def choose_station(request: HttpRequest) -> HttpResponse:
    stations = stations_for(request)
    if request.method == "POST":
        form = StationForm(request.POST, stations=stations)
        if form.is_valid():
            response = redirect("web:station")
            station = form.cleaned_data["station"]
            if station is None:
                response.delete_cookie(COOKIE)
            else:
                response.set_cookie(COOKIE, str(station.pk), max_age=ONE_YEAR, samesite="Lax", httponly=True,
                                    secure=request.is_secure())
            messages.success(request, _("This workstation's scanner station is saved."))
            return response
    else:
        form = StationForm(initial={"station": station_of(request)}, stations=stations)
        station = station_of(request)
        if station is not None and (problem := gs_substitute_problem(station.gs_substitute or "|")):
            messages.error(request, _("This station's GS substitute is ignored: %(problem)s") % {"problem": problem})
    return render(request, "web/station.html", {"form": form, "station": station_of(request)})
