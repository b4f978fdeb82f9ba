"""Purchasing reports, computed from the orders and the ledger — never typed in.

- 网采率: the share of the purchase value ordered through the procurement platform, per month;
  lines ordered off the platform with an emergency reason are counted and listed.
- Delivery performance per supplier, over the orders promised in a period: on-time rate (order lines
  whose full quantity was received — RECEIPT movements of the order's delivery notes — by the end of
  the promised date), fill rate (quantity received / quantity ordered) and lead time (days from the
  order to the first receipt of each line).
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from inventory.models import DeliveryNote, Hospital, Movement, PurchaseOrder, PurchaseOrderLine, Supplier


@dataclass(frozen=True)
class PlatformShare:
    """One month's purchase value, and what of it went through the procurement platform."""

    month: datetime.date
    total_value: Decimal
    platform_value: Decimal
    emergency_lines: int
    emergency_value: Decimal

    @property
    def rate(self) -> Decimal | None:
        """网采率 as a percentage (None when nothing was ordered)."""
        if not self.total_value:
            return None
        return (self.platform_value * 100 / self.total_value).quantize(Decimal("0.01"))


def platform_rate(*, hospital: Hospital, start: datetime.date, end: datetime.date) -> list[PlatformShare]:
    """网采率 per month for the orders placed from `start` to `end` (inclusive), closed ones included:
    what was ordered is what was bought through (or around) the platform."""
    value = ExpressionWrapper(F("quantity") * F("unit_price"), output_field=DecimalField(max_digits=18, decimal_places=2))
    rows = (
        PurchaseOrderLine.objects.filter(
            order__hospital=hospital, order__ordered_at__date__gte=start, order__ordered_at__date__lte=end
        )
        .annotate(month=TruncMonth("order__ordered_at", tzinfo=timezone.get_current_timezone()))
        .values("month")
        .annotate(
            total=Sum(value),
            platform=Sum(value, filter=~Q(platform_reference="")),
            emergency=Sum(value, filter=~Q(emergency_reason="")),
            emergency_lines=Sum(1, filter=~Q(emergency_reason="")),
        )
        .order_by("month")
    )
    zero = Decimal("0.00")
    return [
        PlatformShare(
            month=row["month"].date() if isinstance(row["month"], datetime.datetime) else row["month"],
            total_value=row["total"] or zero, platform_value=row["platform"] or zero,
            emergency_lines=row["emergency_lines"] or 0, emergency_value=row["emergency"] or zero,
        )
        for row in rows
    ]


def emergency_lines(*, hospital: Hospital, start: datetime.date, end: datetime.date):
    """The order lines bought off the platform with an emergency reason in the period (flagged)."""
    return PurchaseOrderLine.objects.filter(
        order__hospital=hospital, order__ordered_at__date__gte=start, order__ordered_at__date__lte=end,
    ).exclude(emergency_reason="").select_related("order__supplier", "product", "emergency_by").order_by(
        "order__ordered_at", "line_no"
    )


@dataclass(frozen=True)
class SupplierPerformance:
    supplier: Supplier
    lines: int
    on_time_lines: int
    ordered_quantity: int
    received_quantity: int
    lead_time_days: Decimal | None  # mean over the lines received at all

    @property
    def on_time_rate(self) -> Decimal | None:
        return (Decimal(self.on_time_lines * 100) / self.lines).quantize(Decimal("0.1")) if self.lines else None

    @property
    def fill_rate(self) -> Decimal | None:
        if not self.ordered_quantity:
            return None
        return (Decimal(self.received_quantity * 100) / self.ordered_quantity).quantize(Decimal("0.1"))


def delivery_performance(
    *, hospital: Hospital, start: datetime.date, end: datetime.date, supplier: Supplier | None = None
) -> list[SupplierPerformance]:
    """Delivery performance per supplier over the orders promised from `start` to `end`, from the
    RECEIPT movements of their delivery notes (three queries, whatever the number of orders)."""
    orders = PurchaseOrder.objects.filter(hospital=hospital, promised_date__gte=start, promised_date__lte=end)
    if supplier is not None:
        orders = orders.filter(supplier=supplier)
    order_lines = list(
        PurchaseOrderLine.objects.filter(order__in=orders).select_related("order__supplier").order_by(
            "order_id", "line_no"
        )
    )
    notes = dict(DeliveryNote.objects.filter(purchase_order__in=orders).values_list("pk", "purchase_order_id"))
    receipts: dict[tuple[int, int], list[tuple[datetime.datetime, int]]] = defaultdict(list)
    for document_id, product_id, occurred_at, quantity in Movement.objects.filter(
        hospital=hospital, kind=Movement.Kind.RECEIPT, document_type=Movement.DocumentType.DELIVERY_NOTE,
        document_id__in=list(notes),
    ).values_list("document_id", "product_id", "occurred_at", "quantity").order_by("occurred_at", "id"):
        receipts[(notes[document_id], product_id)].append((occurred_at, quantity))

    tally: dict[int, dict] = {}
    for order_line in order_lines:
        order = order_line.order
        row = tally.setdefault(order.supplier_id, {
            "supplier": order.supplier, "lines": 0, "on_time": 0, "ordered": 0, "received": 0, "lead_days": [],
        })
        # Receipts of the product against the order, shared out over its lines first line first.
        received = receipts[(order.pk, order_line.product_id)]
        due = timezone.make_aware(datetime.datetime.combine(order.promised_date, datetime.time.max))
        on_time, got, first = _share(received, order_line.quantity, due)
        row["lines"] += 1
        row["ordered"] += order_line.quantity
        row["received"] += got
        row["on_time"] += on_time
        if first is not None:
            row["lead_days"].append(Decimal((first - order.ordered_at).total_seconds()) / 86400)
    return [
        SupplierPerformance(
            supplier=row["supplier"], lines=row["lines"], on_time_lines=row["on_time"],
            ordered_quantity=row["ordered"], received_quantity=row["received"],
            lead_time_days=(sum(row["lead_days"]) / len(row["lead_days"])).quantize(Decimal("0.1"))
            if row["lead_days"] else None,
        )
        for row in sorted(tally.values(), key=lambda row: row["supplier"].name)
    ]


def _share(
    received: list[tuple[datetime.datetime, int]], wanted: int, due: datetime.datetime
) -> tuple[bool, int, datetime.datetime | None]:
    """Take up to `wanted` from the receipts (consumed from the list, so the next line of the same
    product gets the rest): whether it was all there by `due`, how much came, and when the first came."""
    got, first, complete_at = 0, None, None
    while received and got < wanted:
        occurred_at, quantity = received[0]
        share = min(quantity, wanted - got)
        got += share
        first = first or occurred_at
        if share == quantity:
            received.pop(0)
        else:
            received[0] = (occurred_at, quantity - share)
        if got == wanted:
            complete_at = occurred_at
    return complete_at is not None and complete_at <= due, got, first
