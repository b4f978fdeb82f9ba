"""What there is to buy (采购需求): open replenishment suggestions and requisition shortfalls.

- An open replenishment suggestion (services.replenishment) not yet taken into a purchase plan: its
  suggested quantity, already rounded to whole purchase units.
- A requisition shortfall: what an approved requisition (APPROVED or PICKING) still needs and the
  central warehouse cannot cover from its stock. Per product, the warehouse's usable stock (units
  IN_STOCK and lot balances at its central warehouses, not expired) covers the open lines in the
  order the requisitions were approved; what is left of each line is its shortfall. A line already
  taken into a plan still counts for that allocation (its need is real); it is only not offered again.
"""
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.models import (
    Hospital,
    Location,
    LotBalance,
    ReplenishmentSuggestion,
    Requisition,
    RequisitionLine,
    Unit,
)

OPEN_FOR_PURCHASE = (Requisition.Status.APPROVED, Requisition.Status.PICKING)


@dataclass(frozen=True)
class RequisitionShortfall:
    line: RequisitionLine
    outstanding: int  # still to be picked for the line
    shortfall: int  # of which the central warehouse cannot cover


def open_suggestions(hospital: Hospital) -> QuerySet:
    """The hospital's open suggestions not yet in a purchase plan, by location and product."""
    return ReplenishmentSuggestion.objects.filter(
        hospital=hospital, status=ReplenishmentSuggestion.Status.OPEN, purchase_source__isnull=True
    ).select_related("location", "product").order_by("location__name", "product__name", "pk")


def still_unplanned(hospital: Hospital, *, suggestions: set[int], requisition_lines: set[int]) -> tuple[set, set]:
    """Of these suggestions and requisition lines, those a plan can still take: open and in no plan."""
    return (
        set(open_suggestions(hospital).filter(pk__in=suggestions).values_list("pk", flat=True)),
        set(RequisitionLine.objects.filter(pk__in=requisition_lines, requisition__hospital=hospital,
                                           requisition__status__in=OPEN_FOR_PURCHASE, purchase_source__isnull=True)
            .values_list("pk", flat=True)),
    )


def warehouse_stock(hospital: Hospital, product_ids: set[int]) -> dict[int, int]:
    """Usable stock per product at the hospital's central warehouses: units IN_STOCK and lot balances, unexpired."""
    today = timezone.localdate()
    fresh = Q(expiry__isnull=True) | Q(expiry__gte=today)
    at_warehouse = Q(location__kind=Location.Kind.CENTRAL_WAREHOUSE, location__hospital=hospital)
    stock: dict[int, int] = defaultdict(int)
    for row in (Unit.objects.filter(at_warehouse, fresh, hospital=hospital, status="IN_STOCK",
                                    product_id__in=product_ids)
                .values("product_id").annotate(n=Count("pk")).order_by()):
        stock[row["product_id"]] += row["n"]
    for row in (LotBalance.objects.filter(at_warehouse, fresh, product_id__in=product_ids)
                .values("product_id").annotate(n=Sum("quantity")).order_by()):
        stock[row["product_id"]] += row["n"] or 0
    return stock


def requisition_shortfalls(hospital: Hospital, *, unplanned_only: bool = True) -> list[RequisitionShortfall]:
    """Every open approved requisition line the central warehouse cannot cover in full (see module doc)."""
    lines = list(
        RequisitionLine.objects.filter(requisition__hospital=hospital, requisition__status__in=OPEN_FOR_PURCHASE)
        .annotate(still_open=Coalesce("approved_quantity", "requested_quantity") - F("picked_quantity")
                  - F("cancelled_quantity"))
        .filter(still_open__gt=0)
        .select_related("requisition__location", "requisition__department", "product")
        .order_by("requisition__decided_at", "requisition_id", "pk")
    )
    stock = warehouse_stock(hospital, {line.product_id for line in lines})
    planned = set(
        RequisitionLine.objects.filter(pk__in=[line.pk for line in lines], purchase_source__isnull=False)
        .values_list("pk", flat=True)
    )
    shortfalls = []
    for line in lines:
        covered = min(stock[line.product_id], line.still_open)
        stock[line.product_id] -= covered
        short = line.still_open - covered
        if short > 0 and not (unplanned_only and line.pk in planned):
            shortfalls.append(RequisitionShortfall(line, line.still_open, short))
    return shortfalls


def describe_suggestion(suggestion: ReplenishmentSuggestion) -> str:
    return _("Replenishment suggestion %(location)s · %(product)s") % {
        "location": suggestion.location.name, "product": suggestion.product.name}


def describe_requisition_line(line: RequisitionLine) -> str:
    return _("Requisition %(number)s · %(product)s") % {"number": line.requisition.number, "product": line.product.name}
