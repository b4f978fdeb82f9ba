"""The main navigation, in one list. A page is added to the menu by adding one `NavItem` here.

Each item names its URL and the roles that see it (the same sets its view is guarded with, see
`access.py`); `items_for` gives the menu of one request with the current page marked.

On the page the items are grouped into a few menus (`GROUPS`; which item goes where: `GROUP_OF`,
by URL name). An item not placed there is listed under "More" until it is; the dashboard stays a
link of its own. `menus_for` gives the menus one request sees (a menu with nothing the person may
open is left out), rendered by web/_nav.html as <details> (no script needed).
"""
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from inventory.alliance import ALLIANCE_ROLES
from inventory.models import Role
from inventory.services.transfers import can_act_for_alliance
from inventory.web.access import CLINICAL, EVALUATION_READERS, EVERYONE, READERS, REVIEW_READERS, STOCK_HANDLERS, may
from inventory.web.operations import BEDSIDE


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: Promise
    roles: frozenset[str]
    exact: bool = False  # active only on this very URL, not below it (the dashboard at "/")
    only_if: Callable | None = None  # a further condition on the user, the one the view itself asks

    def shown_to(self, user: object) -> bool:
        return may(user, self.roles) and (self.only_if is None or self.only_if(user))


NAV: tuple[NavItem, ...] = (
    NavItem("web:dashboard", _("Dashboard"), EVERYONE, exact=True),
    NavItem("web:stock", _("Stock"), EVERYONE),
    NavItem("web:alerts", _("Alerts"), EVERYONE),
    NavItem("web:receiving", _("Receiving"), STOCK_HANDLERS),
    NavItem("web:purchasing", _("Purchasing"), READERS),
    NavItem("web:review", _("Consumable review"), REVIEW_READERS),
    NavItem("web:clinical-teams", _("Clinical teams"), REVIEW_READERS | {Role.NURSE}),
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
    NavItem("web:alliance-transfers", _("Alliance transfers"), READERS),
    NavItem("web:deliveries", _("Department receipt"), CLINICAL),
    NavItem("web:department-cost", _("Department cost"), EVERYONE),
    NavItem("web:recalls", _("Recalls"), EVERYONE),
    NavItem("web:vbp-contracts", _("VBP contracts"), READERS),
    NavItem("web:complaints", _("Complaints and suspensions"), READERS),
    NavItem("web:evaluation", _("Supplier evaluation"), EVALUATION_READERS),
    NavItem("web:department-count", _("Department count"), CLINICAL),
    NavItem("web:alliance-catalog", _("Alliance catalog"), READERS),
    NavItem("web:alliance-dashboard", _("Alliance dashboard"), frozenset(ALLIANCE_ROLES), exact=True),
    NavItem("web:central-orders", _("Central purchasing"), READERS, exact=True, only_if=can_act_for_alliance),
    NavItem("web:central-plan", _("Central plan from members' demand"), READERS, only_if=can_act_for_alliance),
)


@dataclass(frozen=True)
class MenuEntry:
    url: str
    label: str
    active: bool


def items_for(request: HttpRequest) -> list[MenuEntry]:
    entries = []
    for item in NAV:
        if not item.shown_to(request.user):
            continue
        url = reverse(item.url_name)
        active = request.path == url if item.exact else request.path.startswith(url)
        entries.append(MenuEntry(url, str(item.label), active))
    return entries


@dataclass(frozen=True)
class NavGroup:
    key: str
    label: Promise


GROUPS: tuple[NavGroup, ...] = (
    NavGroup("inbound", _("Inbound")),
    NavGroup("inventory", _("Inventory")),
    NavGroup("distribution", _("Distribution and use")),
    NavGroup("counts", _("Counts and monthly close")),
    NavGroup("purchasing", _("Purchasing and suppliers")),
    NavGroup("analysis", _("Analysis and trace")),
    NavGroup("alliance", _("County alliance")),
    NavGroup("devices", _("Devices")),
    NavGroup("system", _("System")),
    NavGroup("more", _("More")),
)
TOP = ""  # a link of its own, beside the menus
GROUP_OF: dict[str, str] = {
    "web:dashboard": TOP,
    "web:receiving": "inbound", "web:processing": "inbound",
    "web:stock": "inventory", "web:alerts": "inventory", "web:moves": "inventory", "web:par-levels": "inventory",
    "web:recalls": "inventory",
    "web:requisitions": "distribution", "web:requisition-queue": "distribution", "web:picking": "distribution",
    "web:deliveries": "distribution", "web:bedside": "distribution",
    "web:stocktakes": "counts", "web:department-count": "counts", "web:periods": "counts",
    "web:reconciliation": "counts",
    "web:purchasing": "purchasing", "web:vbp-contracts": "purchasing", "web:complaints": "purchasing",
    "web:evaluation": "purchasing",
    "web:review": "analysis", "web:clinical-teams": "analysis", "web:department-cost": "analysis", "web:history": "analysis",
    "web:alliance-dashboard": "alliance", "web:alliance-catalog": "alliance", "web:alliance-transfers": "alliance",
    "web:central-orders": "alliance", "web:central-plan": "alliance",
    "web:cabinets": "devices",
    "web:his-deliveries": "system",
}


@dataclass(frozen=True)
class Menu:
    key: str  # TOP for a plain link (its one entry)
    label: str
    entries: list[MenuEntry]

    @property
    def active(self) -> bool:
        return any(entry.active for entry in self.entries)


def menus_for(request: HttpRequest) -> list[Menu]:
    """The links of `items_for`, as the page shows them: top links and menus in `GROUPS` order."""
    grouped: dict[str, list[MenuEntry]] = {group.key: [] for group in GROUPS}
    menus = []
    for item in NAV:
        if not item.shown_to(request.user):
            continue
        url = reverse(item.url_name)
        entry = MenuEntry(url, str(item.label), request.path == url if item.exact else request.path.startswith(url))
        key = GROUP_OF.get(item.url_name, "more")
        if key == TOP:
            menus.append(Menu(TOP, entry.label, [entry]))
        else:
            grouped[key if key in grouped else "more"].append(entry)
    return menus + [Menu(group.key, str(group.label), grouped[group.key]) for group in GROUPS if grouped[group.key]]
