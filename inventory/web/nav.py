"""The main navigation, in one list. A page is added to the menu by adding one `NavItem` here.

Each item names its URL and the roles that see it (the same sets its view is guarded with, see
`access.py`); `items_for` gives the menu of one request with the current page marked.
"""
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from inventory.web.access import CLINICAL, EVALUATION_READERS, EVERYONE, READERS, STOCK_HANDLERS, may
from inventory.web.operations import BEDSIDE


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: Promise
    roles: frozenset[str]
    exact: bool = False  # active only on this very URL, not below it (the dashboard at "/")


NAV: tuple[NavItem, ...] = (
    NavItem("web:dashboard", _("Dashboard"), EVERYONE, exact=True),
    NavItem("web:stock", _("Stock"), EVERYONE),
    NavItem("web:alerts", _("Alerts"), EVERYONE),
    NavItem("web:receiving", _("Receiving"), STOCK_HANDLERS),
    NavItem("web:purchasing", _("Purchasing"), READERS),
    NavItem("web:review", _("Consumable review"), READERS),
    NavItem("web:moves", _("Transfers and returns"), STOCK_HANDLERS),
    NavItem("web:processing", _("Processing"), STOCK_HANDLERS),
    NavItem("web:cabinets", _("Smart cabinets"), EVERYONE),
    NavItem("web:bedside", _("Use on a patient"), BEDSIDE),
    NavItem("web:reconciliation", _("Reconciliation"), READERS),
    NavItem("web:periods", _("Monthly close"), READERS),
    NavItem("web:stocktakes", _("Stocktakes"), EVERYONE),
    NavItem("web:his-deliveries", _("Charges to the HIS"), READERS),
    NavItem("web:history", _("Change history"), READERS),
    NavItem("web:requisitions", _("Requisitions"), CLINICAL),
    NavItem("web:requisition-queue", _("Distribution queue"), READERS),
    NavItem("web:par-levels", _("Par levels"), STOCK_HANDLERS),
    NavItem("web:picking", _("Picking"), STOCK_HANDLERS),
    NavItem("web:deliveries", _("Department receipt"), CLINICAL),
    NavItem("web:department-cost", _("Department cost"), EVERYONE),
    NavItem("web:recalls", _("Recalls"), EVERYONE),
    NavItem("web:vbp-contracts", _("VBP contracts"), READERS),
    NavItem("web:complaints", _("Complaints and suspensions"), READERS),
    NavItem("web:evaluation", _("Supplier evaluation"), EVALUATION_READERS),
    NavItem("web:department-count", _("Department count"), CLINICAL),
)


@dataclass(frozen=True)
class MenuEntry:
    url: str
    label: str
    active: bool


def items_for(request: HttpRequest) -> list[MenuEntry]:
    entries = []
    for item in NAV:
        if not may(request.user, item.roles):
            continue
        url = reverse(item.url_name)
        active = request.path == url if item.exact else request.path.startswith(url)
        entries.append(MenuEntry(url, str(item.label), active))
    return entries
