"""Smart cabinets (智能柜): whether each one's device is online, what is in it, who took what at its
last door sessions (with unknown and misplaced tags), and the taken units overdue for return
(`services.cabinets.overdue_takes`). Read-only, for everyone of the hospital; a nurse sees the
cabinets of their departments."""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from devices.models import Device, RejectedMessage
from inventory.models import CabinetSession, Location, Product, Unit, UnitStatus
from inventory.selectors.scope import visible_to
from inventory.selectors.stock import StockScope
from inventory.services.cabinets import deadline_hours, overdue_takes
from inventory.web.access import READERS, may, web_page

# What a cabinet holds as the ledger sees it: in the cabinet, taken out (not yet used or put back),
# expired and locked there.
CONTENTS = (UnitStatus.IN_CABINET, UnitStatus.TAKEN, UnitStatus.EXPIRED)
SESSIONS = 20
# A session closed with no open seen has no opened_at; PostgreSQL would sort it first.
NEWEST_FIRST = (Coalesce("opened_at", "closed_at").desc(nulls_last=True), "-pk")


@dataclass
class CabinetSummary:
    cabinet: Location
    devices: list[Device] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    last_session: CabinetSession | None = None

    @property
    def online(self) -> bool:
        return any(device.is_online for device in self.devices)

    @property
    def in_cabinet(self) -> int:
        return self.counts.get(UnitStatus.IN_CABINET, 0)

    @property
    def taken(self) -> int:
        return self.counts.get(UnitStatus.TAKEN, 0)

    @property
    def expired(self) -> int:
        return self.counts.get(UnitStatus.EXPIRED, 0)


def _cabinets(request: HttpRequest) -> QuerySet:
    return StockScope.of(request.user).locations().filter(kind=Location.Kind.SMART_CABINET).select_related(
        "department", "hospital")


def _overdue(cabinets: list[Location]) -> dict[int, list[Unit]]:
    """Overdue takes per cabinet: the service decides (one query per hospital shown)."""
    by_cabinet: dict[int, list[Unit]] = defaultdict(list)
    ids = {cabinet.pk for cabinet in cabinets}
    for hospital in {cabinet.hospital for cabinet in cabinets}:
        for unit in overdue_takes(hospital):
            if unit.location_id in ids:
                by_cabinet[unit.location_id].append(unit)
    return by_cabinet


@web_page()
def cabinet_list(request: HttpRequest) -> HttpResponse:
    cabinets = list(_cabinets(request).order_by("code"))
    summaries = {cabinet.pk: CabinetSummary(cabinet) for cabinet in cabinets}
    for device in Device.objects.filter(location__in=summaries, is_active=True).order_by("code"):
        summaries[device.location_id].devices.append(device)
    counts = Unit.objects.filter(location__in=summaries, status__in=CONTENTS).values("location", "status").annotate(
        n=Count("pk"))
    for row in counts:
        summaries[row["location"]].counts[row["status"]] = row["n"]
    for cabinet_id, units in _overdue(cabinets).items():
        summaries[cabinet_id].overdue = len(units)
    latest = CabinetSession.objects.filter(cabinet=OuterRef("pk")).order_by(*NEWEST_FIRST)
    last_ids = _cabinets(request).filter(pk__in=summaries).annotate(last=Subquery(latest.values("pk")[:1])).values_list(
        "pk", "last")
    sessions = CabinetSession.objects.select_related("user").in_bulk([last for _, last in last_ids if last])
    for cabinet_id, last in last_ids:
        summaries[cabinet_id].last_session = sessions.get(last)
    # Who looks after the cabinets sees how many of their messages were refused lately (the dead letters).
    rejected_lately = visible_to(request.user, RejectedMessage.objects.filter(
        received_at__gte=timezone.now() - timedelta(hours=24))).count() if may(request.user, READERS) else None
    return render(request, "web/cabinets/list.html", {
        "summaries": list(summaries.values()), "scope": StockScope.of(request.user), "rejected_lately": rejected_lately,
    })


@web_page()
def cabinet_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cabinet = get_object_or_404(_cabinets(request), pk=pk)
    devices = list(Device.objects.filter(location=cabinet, is_active=True).order_by("code"))
    contents = list(Unit.objects.filter(location=cabinet, status__in=CONTENTS).select_related("product").order_by(
        "status", "expiry", "product__internal_code", "pk"))
    overdue = _overdue([cabinet]).get(cabinet.pk, [])
    for unit in overdue:
        unit.deadline = deadline_hours(unit)
    sessions = list(CabinetSession.objects.filter(cabinet=cabinet).select_related("user", "device").order_by(
        *NEWEST_FIRST)[:SESSIONS])
    return render(request, "web/cabinets/detail.html", {
        "cabinet": cabinet, "devices": devices, "contents": contents, "overdue": overdue,
        "overdue_ids": {unit.pk for unit in overdue}, "sessions": _session_views(sessions, cabinet),
        "online": any(device.is_online for device in devices),
    })


@dataclass
class SessionView:
    session: CabinetSession
    taken: list[dict]
    returned: list[dict]
    misplaced: list[dict]


def _session_views(sessions: list[CabinetSession], cabinet: Location) -> list[SessionView]:
    """The sessions' JSON lists with product names and locations, for people to read (two queries)."""
    product_ids = {item.get("product") for s in sessions for item in [*s.taken, *s.returned]}
    products = Product.objects.in_bulk([pk for pk in product_ids if pk])
    location_ids = {item.get("location") for s in sessions for item in s.misplaced if item.get("location")}
    locations = Location.objects.filter(hospital=cabinet.hospital_id).in_bulk(location_ids)

    def named(items: list[dict]) -> list[dict]:
        return [{**item, "product_name": getattr(products.get(item.get("product")), "name", "")} for item in items]

    def placed(items: list[dict]) -> list[dict]:
        return [
            {**item, "location_name": getattr(locations.get(item.get("location")), "name", ""),
             "same_hospital": item.get("hospital") == cabinet.hospital_id}
            for item in items
        ]

    return [SessionView(s, named(s.taken), named(s.returned), placed(s.misplaced)) for s in sessions]
