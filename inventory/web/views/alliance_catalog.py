"""The county alliance (医共体) pages: the alliance catalog with adoption by a member
(`/alliance/catalog/`), one entry with its agreements and members (`/alliance/catalog/<id>/`), and
the alliance dashboard (`/alliance/`) — stock and near-expiry across members, transfer suggestions,
use per member and VBP progress (selectors.alliance, services.alliance_catalog)."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from inventory.actors import Actor
from inventory.alliance import ALLIANCE_ROLES, alliance_of
from inventory.errors import Refused
from inventory.selectors.alliance import (
    alliance_dashboard,
    catalog_categories,
    catalog_entries,
    entry_members,
    sees_alliance_members,
)
from inventory.selectors.alliance_transfers import transfers_between_members
from inventory.services.alliance_catalog import ADOPTERS, adopt_entries
from inventory.web.access import READERS, may, web_page
from inventory.web.problems import problems_of

ALLIANCE_STAFF = frozenset(ALLIANCE_ROLES)
PAGE_SIZE = 50
MAX_ADOPT = 20_000


def _flag(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@web_page(READERS)
def catalog(request: HttpRequest) -> HttpResponse:
    """The alliance catalog as the user's hospital sees it; the hospital's catalog editors adopt the
    entries ticked, or every entry not yet adopted that matches the class and search shown."""
    source = request.POST if request.method == "POST" else request.GET
    text, category = source.get("q", "")[:200], source.get("category", "")[:100]
    adopted = _flag(source.get("adopted", ""))
    may_adopt = request.user.hospital_id is not None and may(request.user, frozenset(ADOPTERS))
    problems = []
    if request.method == "POST":
        if not may_adopt:
            raise PermissionDenied
        if request.POST.get("all") == "1":
            entries = list(catalog_entries(request.user, text=text, category=category, adopted=False)[:MAX_ADOPT])
        else:
            ids = [int(pk) for pk in request.POST.getlist("entry") if pk.isdigit() and len(pk) < 10]
            entries = list(catalog_entries(request.user).filter(pk__in=ids))
        try:
            result = adopt_entries(actor=Actor(user=request.user), hospital=request.user.hospital, entries=entries)
        except Refused as refused:
            problems = problems_of(refused)
        else:
            messages.success(request, _(
                "Adopted: %(adopted)d new products, %(linked)d existing products linked, %(already)d already "
                "adopted; %(agreements)d supply agreements."
            ) % {"adopted": result.adopted, "linked": result.linked, "already": result.already,
                 "agreements": result.agreements})
            return redirect(request.get_full_path())
    entries = catalog_entries(request.user, text=text, category=category, adopted=adopted)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "web/alliance/catalog.html", {
        "alliance": alliance_of(request.user), "page": page, "q": text, "category": category,
        "adopted": source.get("adopted", ""), "categories": catalog_categories(request.user),
        "may_adopt": may_adopt, "sees_members": sees_alliance_members(request.user), "problems": problems,
    })


@web_page(READERS)
def entry(request: HttpRequest, pk: int) -> HttpResponse:
    """One alliance entry: its data, the alliance's agreements, and the members' linked products."""
    found = catalog_entries(request.user).filter(pk=pk).first()
    if found is None:
        raise Http404
    return render(request, "web/alliance/entry.html", {
        "entry": found, "agreements": found.agreements.select_related("supplier").order_by("supplier__name", "-valid_from"),
        "members": entry_members(request.user, found), "sees_members": sees_alliance_members(request.user),
    })


@web_page(ALLIANCE_STAFF)
def dashboard(request: HttpRequest) -> HttpResponse:
    """The alliance dashboard (alliance staff): every member's stock and use, and what to move where."""
    expiry_days = _days(request.GET.get("expiry_days"))
    use_days = _days(request.GET.get("use_days"))
    figures = alliance_dashboard(request.user, expiry_days=expiry_days, use_days=use_days)
    alliance = alliance_of(request.user)
    return render(request, "web/alliance/dashboard.html", {
        "dashboard": figures, "alliance": alliance,
        "flows": transfers_between_members(alliance, days=figures.use_days) if alliance else [],
    })


def _days(value: str | None) -> int:
    if value and value.isascii() and value.isdigit() and 1 <= int(value) <= 730:
        return int(value)
    return 90
