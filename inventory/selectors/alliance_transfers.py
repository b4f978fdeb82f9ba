"""Read paths of the county alliance's transfers, central orders and allocation statements.

`transfers_between_members` is the dashboard panel "transfers between members" (调拨往来): one
aggregate query per alliance, whatever the number of transfers.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.models import AllianceTransfer, AllianceTransferLine, AllocationStatement, CentralOrder, User
from inventory.services.transfers import can_act_for_alliance, transfers_visible_to

MONEY = DecimalField(max_digits=16, decimal_places=2)


@dataclass(frozen=True)
class MemberFlow:
    """Transfers from one member to another over the window, and what is on the road between them."""

    from_hospital_id: int
    from_hospital: str
    to_hospital_id: int
    to_hospital: str
    transfers: int
    emergency: int
    in_transit: int
    in_transit_value: Decimal
    received_value: Decimal


def transfers_between_members(alliance: str, *, days: int = 30, now: datetime.datetime | None = None
                              ) -> list[MemberFlow]:
    """Per (sender, receiver) of `alliance`: the transfers created in the last `days` days (and how
    many were emergency allocations), those in transit now and their value at cost, and the value
    received in the window. For the alliance dashboard (who acts for the alliance sees all members)."""
    since = (now or timezone.now()) - datetime.timedelta(days=days)
    recent = Q(created_at__gte=since)
    rows = (
        AllianceTransfer.objects.filter(alliance=alliance).filter(recent | Q(status=AllianceTransfer.Status.IN_TRANSIT))
        .values("from_hospital", "from_hospital__name", "to_hospital", "to_hospital__name")
        .annotate(
            transfers=Count("pk", filter=recent, distinct=True),
            emergency=Count("pk", filter=recent & Q(kind=AllianceTransfer.Kind.EMERGENCY), distinct=True),
            in_transit=Count("pk", filter=Q(status=AllianceTransfer.Status.IN_TRANSIT), distinct=True),
            in_transit_value=Coalesce(Sum("lines__value", filter=Q(status=AllianceTransfer.Status.IN_TRANSIT)),
                                      Decimal("0"), output_field=MONEY),
            received_value=Coalesce(Sum("lines__value", filter=Q(status=AllianceTransfer.Status.RECEIVED,
                                                                   received_at__gte=since)),
                                    Decimal("0"), output_field=MONEY),
        )
        .order_by("from_hospital__name", "to_hospital__name")
    )
    return [
        MemberFlow(row["from_hospital"], row["from_hospital__name"], row["to_hospital"], row["to_hospital__name"],
                   row["transfers"], row["emergency"], row["in_transit"], row["in_transit_value"],
                   row["received_value"])
        for row in rows
    ]


def transfer_list(user: User, *, status: str = "", direction: str = "", kind: str = "") -> QuerySet[AllianceTransfer]:
    """The transfers `user` sees, newest first; `direction` "in" (received by the user's hospital)
    or "out" (sent by it); emergency allocations keep their flag (`kind`)."""
    transfers = transfers_visible_to(user)
    if status:
        transfers = transfers.filter(status=status)
    if kind:
        transfers = transfers.filter(kind=kind)
    if direction == "in":
        transfers = transfers.filter(to_hospital_id=user.hospital_id)
    elif direction == "out":
        transfers = transfers.filter(from_hospital_id=user.hospital_id)
    return transfers.order_by("-created_at", "-pk")


def central_orders_visible_to(user: User) -> QuerySet[CentralOrder]:
    """Central orders: who acts for the alliance sees its alliance's (an alliance administrator, all)."""
    orders = CentralOrder.objects.select_related("purchase_order__supplier", "regional_warehouse")
    if not can_act_for_alliance(user):
        return orders.none()
    if user.hospital_id is None:
        return orders
    return orders.filter(alliance=user.hospital.alliance)


def central_order_receipts(order_ids: list[int]) -> dict[tuple[int, int, int], int]:
    """What each member has received (its receipts taken into its books) of each central order's
    products: (central order, member, the lead hospital's product) → quantity. One query."""
    rows = AllianceTransferLine.objects.filter(
        transfer__central_order_id__in=order_ids, transfer__status=AllianceTransfer.Status.RECEIVED,
    ).values("transfer__central_order_id", "transfer__to_hospital_id", "product_id").annotate(
        received=Sum("received_quantity")).order_by()
    return {(row["transfer__central_order_id"], row["transfer__to_hospital_id"], row["product_id"]): row["received"]
            for row in rows}


def statements_visible_to(user: User) -> QuerySet[AllocationStatement]:
    """Allocation statements: the centre sees its alliance's; a member's book readers see their own."""
    statements = AllocationStatement.objects.select_related("member", "centre")
    if user.is_superuser and getattr(user, "hospital_id", None) is None:
        return statements
    if getattr(user, "hospital_id", None) is None:
        return statements.none()
    if can_act_for_alliance(user):
        return statements.filter(alliance=user.hospital.alliance)
    return statements.filter(member_id=user.hospital_id)
