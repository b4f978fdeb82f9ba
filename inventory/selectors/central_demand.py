"""What the alliance's members need to buy, for central purchasing (集中采购).

A member's open demand is exactly what plans from demand offer that member
(`selectors.purchase_demand`: its open replenishment suggestions not yet in a plan, and the
requisition shortfalls its own central warehouse cannot cover), kept to its products linked to the
alliance catalog — the ones the centre can buy for it. The lead hospital plans its own needs itself.
"""
from dataclasses import dataclass

from inventory.models import Hospital, ReplenishmentSuggestion
from inventory.selectors.purchase_demand import RequisitionShortfall, open_suggestions, requisition_shortfalls


@dataclass(frozen=True)
class MemberDemand:
    member: Hospital
    suggestions: list[ReplenishmentSuggestion]
    shortfalls: list[RequisitionShortfall]


def members_open_demand(alliance: str) -> list[MemberDemand]:
    """Each member's open demand for alliance-catalog products (members other than the lead, by name);
    a member with none is left out."""
    demand = []
    for member in Hospital.objects.filter(alliance=alliance, is_lead=False).order_by("name", "pk"):
        suggestions = list(open_suggestions(member).filter(product__alliance_entry__isnull=False))
        shortfalls = [short for short in requisition_shortfalls(member) if short.line.product.alliance_entry_id]
        if suggestions or shortfalls:
            demand.append(MemberDemand(member, suggestions, shortfalls))
    return demand
