"""The dashboard: what needs attention now, within the person's scope.

Each count links to the list it counts, filtered the same way (alerts by kind or state, stock by
expiry window, delivery notes awaiting acceptance, charges not reaching the HIS). The people who
keep the books (READERS) also see what is waiting for them and two charts: use on patients per week
and held stock expiring per month, in money (quantities of different units of measure are shown
apart, never added).

A nurse (the nurse role and no stock role) has her own home: her work is using items on patients
(使用登记) and her department's smart cabinets, not stock values; so her home leads there.
"""
import datetime
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inventory.models import Role, User
from inventory.selectors.dashboard import MonthExpiry, WeekUse
from inventory.selectors.dashboard import dashboard as dashboard_figures
from inventory.selectors.requisitions import queue_counts
from inventory.selectors.stock import StockScope
from inventory.services.alerts import expiry_tiers
from inventory.templatetags.spd_web import measures, money
from inventory.web.access import READERS, STOCK_HANDLERS, may, roles_of, web_page
from inventory.web.charts import BarChart, BarInput, bar_chart
from inventory.web.views.bedside import departments_for, todays_uses
from inventory.web.views.cabinets import _cabinets

EXPIRY_COLOUR = "#b42318"
EXPIRED_COLOUR = "#6b1010"


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
    books = may(request.user, READERS)
    context = {
        "figures": figures, "scope": scope, "books": books, "can_receive": may(request.user, STOCK_HANDLERS),
        "expiry_rows": [(tier, expiry_links(tier.first_day, tier.last_day)) for tier in figures.expiry],
    }
    if books:
        context["distribution"] = queue_counts(request.user)
        context.update({
            "expired": figures.expiry[0],
            "expired_links": expiry_links(figures.expiry[0].first_day, figures.expiry[0].last_day),
            "use_chart": use_chart(figures.use_by_week),
            "expiry_chart": expiry_chart(figures.expiry_months),
            "month_rows": [(month, expiry_links(month.first_day, month.last_day)) for month in figures.expiry_months],
        })
    return render(request, "web/dashboard.html", context)


def _nurse_home(request: HttpRequest) -> HttpResponse:
    department = departments_for(request).first()
    return render(request, "web/dashboard_nurse.html", {
        "department": department,
        "used_today": todays_uses(request, department).count() if department else 0,
        "cabinets": list(_cabinets(request).order_by("code")),
    })


def expiry_links(first: datetime.date | None, last: datetime.date) -> dict[str, str]:
    """The units list and the lots list of the stock expiring from `first` (None: any day) to `last`."""
    query = urlencode({**({"expiry_after": first.isoformat()} if first else {}), "expiry_before": last.isoformat()})
    return {"units": f"{reverse('web:stock')}?{query}", "lots": f"{reverse('web:stock-lots')}?{query}"}


def use_chart(weeks: list[WeekUse]) -> BarChart:
    return bar_chart([
        BarInput(
            f"{week.first_day:%m-%d}",
            week.value,
            _("Week of %(first)s to %(last)s: %(value)s, %(uses)s") % {
                "first": f"{week.first_day:%Y-%m-%d}", "last": f"{week.last_day:%Y-%m-%d}",
                "value": money(week.value),
                "uses": ngettext("%(n)d use", "%(n)d uses", week.uses) % {"n": week.uses},
            },
        )
        for week in weeks
    ], every=2)


def expiry_chart(months: list[MonthExpiry]) -> BarChart:
    bars = []
    for month in months:
        label = _("Expired") if month.month is None else f"{month.month:%Y-%m}"
        bars.append(BarInput(
            label, month.value,
            _("%(period)s: %(value)s at cost; %(units)s; lots: %(lots)s") % {
                "period": label, "value": money(month.value),
                "units": ngettext("%(n)d coded unit", "%(n)d coded units", month.units) % {"n": month.units},
                "lots": measures(month.lot_quantities),
            },
            href=expiry_links(month.first_day, month.last_day)["units"],
            colour=EXPIRED_COLOUR if month.month is None else EXPIRY_COLOUR,
        ))
    return bar_chart(bars)

