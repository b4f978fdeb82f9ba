"""Template helpers of the web pages: `{% load spd_web %}`.

    {{ amount|money }}         ¥1,234.50 (−¥12.00 for a refund), "—" for nothing
    {{ unit.expiry|days_left }} days from today (negative once expired), in the hospital's time zone
    {% main_nav %}             the menu of this request (inventory.web.nav.NAV)
    {% gs_substitute %}        the GS substitute of this workstation's scanner station, or ""
    {% role_names user %}      the user's roles, in the active language
    {{ form|as_problems }}     a form's errors as problems, for web/_errors.html
    {{ code|label_of:"movement" }}  the label of a stored choice (see _CHOICES)
    {{ alert|describe }}       what an alert is about, in the active language
    {{ code|reason }}          the label of a return, scrap or refund reason code
    {% sort_header listing "key" label %}  a sortable column header (inventory.web.listing)
    {% in_packages product quantity %}  a base quantity in packaging units: "3 盒 4 支", or ""
    {{ tier.lot_quantities|measures }}  lot quantities per unit of measure: "20 盒 · 5 套", or "—"
"""
import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.http import HttpRequest
from django.utils import timezone

from inventory.models import AcceptanceRecord, Alert, Certificate, Movement, Owner, Role, StockOrder, UnitStatus
from inventory.services.alerts import expiry_tiers
from inventory.services.units_of_measure import describe_quantity
from inventory.web.access import roles_of
from inventory.web.describe import describe_alert, reason_label
from inventory.web.nav import menus_for
from inventory.web.problems import ShownProblem, problems_of
from inventory.web.views.station import gs_substitute_of

register = template.Library()


@register.filter
def measures(quantities: object) -> str:
    """Lot quantities (selectors.dashboard.Quantity) each in its own unit of measure: boxes and
    pieces are never added into one number."""
    return " · ".join(f"{quantity.amount} {quantity.measure}" for quantity in quantities or ()) or "—"


@register.simple_tag
def in_packages(product: object, base_quantity: int) -> str:
    """A base quantity in the product's packaging units ("3 盒 4 支"); "" for a product that has none
    (the base quantity beside it says it all). Prefetch `packaging_units` for a list."""
    if not any(True for _ in product.packaging_units.all()):
        return ""
    return describe_quantity(product=product, base_quantity=base_quantity)


@register.inclusion_tag("web/_sort_header.html")
def sort_header(listing: object, key: str, label: str, css: str = "") -> dict:
    """A column header that sorts the list by `key` (descending on a second click), marked with
    aria-sort when the list is sorted by it."""
    active = listing.sort == key
    return {"href": listing.sort_link(key), "label": label, "css": css, "active": active,
            "descending": active and listing.descending, "key": key}


@register.filter
def money(value: object) -> str:
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


@register.filter
def days_left(value: datetime.date | None) -> int | None:
    if not isinstance(value, datetime.date):
        return None
    if isinstance(value, datetime.datetime):
        value = timezone.localdate(value)
    return (value - timezone.localdate()).days


@register.filter
def expiry_class(value: datetime.date | None) -> str:
    """A CSS class for an expiry date: expired, within the narrowest or the widest near-expiry tier
    (SPD_EXPIRY_TIERS, e.g. 30 and 90 days), or nothing."""
    days = days_left(value)
    if days is None:
        return ""
    tiers = expiry_tiers()
    if days < 0:
        return "expired"
    if days <= tiers[-1]:
        return "expiring-soon"
    if days <= tiers[0]:
        return "expiring"
    return ""


@register.inclusion_tag("web/_nav.html", takes_context=True)
def main_nav(context: template.Context) -> dict:
    request: HttpRequest = context["request"]
    return {"menus": menus_for(request)}


@register.simple_tag(takes_context=True)
def gs_substitute(context: template.Context) -> str:
    request = context.get("request")  # absent on pages rendered without one (the CSRF failure page)
    return (gs_substitute_of(request) or "") if request is not None else ""


@register.simple_tag
def role_names(user: object) -> str:
    roles = roles_of(user)
    return " · ".join(str(role.label) for role in Role if role.value in roles)


@register.filter
def as_problems(form: object) -> list[ShownProblem]:
    return problems_of(form) if form is not None and getattr(form, "errors", None) else []


_CHOICES = {
    "movement": Movement.Kind,
    "status": UnitStatus,
    "certificate": Certificate.Kind,
    "owner": Owner,
    "order": StockOrder.Kind,
    "decision": AcceptanceRecord.Decision,
    "document": Movement.DocumentType,
}


@register.filter
def label_of(value: object, choices: str) -> str:
    """The label, in the active language, of a stored choice value: {{ code|label_of:"movement" }}."""
    if value in (None, ""):
        return ""
    try:
        return str(_CHOICES[choices](value).label)
    except ValueError:
        return str(value)


@register.filter
def reason(code: str | None) -> str:
    """The label of a stored reason code (DAMAGED, NOT_USED…) in the active language."""
    return reason_label(code)


@register.filter
def describe(alert: Alert) -> str:
    """What an alert is about, in the active language (web.describe)."""
    return describe_alert(alert)
