"""Read paths for consignment settlement (寄售结算, 先消耗、后结算): what the hospital owes a supplier.

A consignment unit belongs to the supplier until it is used; its use makes it the hospital's and
puts it on the supplier's bill. What is owed for a period is therefore read from consumptions:

- of a unit or lot the supplier still owned when it was used (`Consumption.was_consignment`, set
  with the OWNER_CHANGE movement; the product's current consignment flag does not matter: a unit
  of a consignment product the hospital had bought is not owed, a use from before the product
  stopped being consigned still is),
- supplied by that supplier: for a unit, the unit's supplier; for a lot-tracked product (no unit),
  the supplier holding a supply agreement for the product valid on the day of use. This keeps lots
  simple; a product consigned by two suppliers at once must be unit-tracked to be settled apart,
- used in the period: dates are calendar days in the instance's TIME_ZONE (every hospital of one
  instance shares it), period end inclusive,
- not refunded, and not on a confirmed statement.

A draft statement claims nothing: its consumptions still count as unsettled, and drafting again
(for that period or an overlapping one) takes them. Only confirmation locks a line.
"""
import calendar
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from inventory.models import (
    Consumption,
    Hospital,
    Supplier,
    SupplierSettlement,
    SupplierSettlementLine,
    SupplyAgreement,
)

MONEY = DecimalField(max_digits=16, decimal_places=2)
_ZERO = Value(Decimal("0.00"), output_field=MONEY)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SettlementRow:
    """One consumed consignment unit or lot quantity, as it appears on a statement."""

    consumption_id: int
    product_id: int
    product_code: str
    product_name: str
    specification: str
    unit_id: int | None
    serial: str
    lot: str
    encounter: str
    department: str
    occurred_at: datetime.datetime
    quantity: int
    unit_price: Decimal
    amount: Decimal
    statement_id: int | None  # the draft (live summary) or statement (stored) holding this line


@dataclass(frozen=True)
class ProductTotal:
    product_id: int
    product_code: str
    product_name: str
    specification: str
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class SettlementSummary:
    """Lines oldest first, totals per product (by internal code) and the grand totals."""

    lines: list[SettlementRow]
    products: list[ProductTotal]
    quantity: int
    amount: Decimal


def month_period(year: int, month: int) -> tuple[datetime.date, datetime.date]:
    """The first and last day of a calendar month (`period=YYYY-MM`)."""
    return datetime.date(year, month, 1), datetime.date(year, month, calendar.monthrange(year, month)[1])


def period_bounds(
    period_start: datetime.date, period_end: datetime.date
) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) instants of a period of local calendar days, end day included."""
    zone = timezone.get_default_timezone()
    start = datetime.datetime.combine(period_start, datetime.time.min, tzinfo=zone)
    end = datetime.datetime.combine(period_end + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
    return start, end


def unsettled_consignment_consumptions(
    hospital: Hospital, supplier: Supplier, period_start: datetime.date, period_end: datetime.date
) -> QuerySet:
    """Consumptions the hospital owes `supplier` for in the period and has not settled (see module doc).

    One query, oldest first, with what a statement line shows already joined.
    """
    start, end = period_bounds(period_start, period_end)
    lot_of_supplier = SupplyAgreement.objects.filter(
        hospital=OuterRef("hospital"), product=OuterRef("product"), supplier=supplier,
        valid_from__lte=OuterRef("used_on"), valid_to__gte=OuterRef("used_on"),
    )
    return (
        Consumption.objects.filter(
            hospital=hospital, was_consignment=True, refunded_at__isnull=True,
            occurred_at__gte=start, occurred_at__lt=end,
        )
        .annotate(used_on=TruncDate("occurred_at", tzinfo=timezone.get_default_timezone()))
        .filter(Q(unit__supplier=supplier) | (Q(unit__isnull=True) & Exists(lot_of_supplier)))
        .filter(
            Q(settlement_line__isnull=True) | Q(settlement_line__settlement__status=SupplierSettlement.Status.DRAFT)
        )
        .select_related("product", "unit", "department", "settlement_line")
        .order_by("occurred_at", "pk")
    )


def settlement_summary(
    hospital: Hospital, supplier: Supplier, period_start: datetime.date, period_end: datetime.date
) -> SettlementSummary:
    """The live statement: every unsettled consignment use of the period with its price and totals."""
    consumptions = unsettled_consignment_consumptions(hospital, supplier, period_start, period_end)
    amount = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)
    lines = [_row_of_consumption(consumption) for consumption in consumptions]
    products = consumptions.order_by().values(
        "product_id", "product__internal_code", "product__name", "product__specification"
    ).annotate(total_quantity=Sum("quantity"), total_amount=Sum(amount, output_field=MONEY))
    totals = consumptions.order_by().aggregate(
        total_quantity=Coalesce(Sum("quantity"), 0), total_amount=Coalesce(Sum(amount, output_field=MONEY), _ZERO)
    )
    return SettlementSummary(
        lines=lines, products=_product_totals(products), quantity=totals["total_quantity"],
        amount=_cents(totals["total_amount"]),
    )


def statement_summary(settlement: SupplierSettlement) -> SettlementSummary:
    """A stored statement as it was drafted or confirmed: its lines, totals per product and in all."""
    lines = SupplierSettlementLine.objects.filter(settlement=settlement)
    products = lines.order_by().values(
        "product_id", "product__internal_code", "product__name", "product__specification"
    ).annotate(total_quantity=Sum("quantity"), total_amount=Sum("amount", output_field=MONEY))
    totals = lines.order_by().aggregate(
        total_quantity=Coalesce(Sum("quantity"), 0), total_amount=Coalesce(Sum("amount", output_field=MONEY), _ZERO)
    )
    rows = [
        _row_of_line(line)
        for line in lines.select_related("product", "unit", "consumption__department").order_by(
            "consumption__occurred_at", "consumption_id"
        )
    ]
    return SettlementSummary(
        lines=rows, products=_product_totals(products), quantity=totals["total_quantity"],
        amount=_cents(totals["total_amount"]),
    )


def statements_with_totals(queryset: QuerySet) -> QuerySet:
    """Statements with their number of lines, quantity and amount, newest period first."""
    return queryset.select_related("supplier").annotate(
        line_count=Count("lines"),
        total_quantity=Coalesce(Sum("lines__quantity"), 0),
        total_amount=Coalesce(Sum("lines__amount", output_field=MONEY), _ZERO),
    ).order_by("-period_start", "supplier__name", "pk")


def statements_overlapping(
    hospital: Hospital, supplier: Supplier, period_start: datetime.date, period_end: datetime.date
) -> QuerySet:
    """The supplier's stored statements of the hospital whose period shares a day with this one."""
    return SupplierSettlement.objects.filter(
        hospital=hospital, supplier=supplier, period_start__lte=period_end, period_end__gte=period_start
    )


def _row_of_consumption(consumption: Consumption) -> SettlementRow:
    unit = consumption.unit
    line = getattr(consumption, "settlement_line", None)
    return SettlementRow(
        consumption_id=consumption.pk, product_id=consumption.product_id,
        product_code=consumption.product.internal_code, product_name=consumption.product.name,
        specification=consumption.product.specification, unit_id=consumption.unit_id,
        serial=unit.serial if unit else "", lot=consumption.lot or (unit.lot if unit else ""),
        encounter=consumption.encounter, department=consumption.department.name,
        occurred_at=consumption.occurred_at, quantity=consumption.quantity, unit_price=consumption.unit_price,
        amount=consumption.unit_price * consumption.quantity, statement_id=line.settlement_id if line else None,
    )


def _row_of_line(line: SupplierSettlementLine) -> SettlementRow:
    consumption = line.consumption
    return SettlementRow(
        consumption_id=line.consumption_id, product_id=line.product_id, product_code=line.product.internal_code,
        product_name=line.product.name, specification=line.product.specification, unit_id=line.unit_id,
        serial=line.unit.serial if line.unit else "", lot=line.lot, encounter=consumption.encounter,
        department=consumption.department.name, occurred_at=consumption.occurred_at, quantity=line.quantity,
        unit_price=line.unit_price, amount=line.amount, statement_id=line.settlement_id,
    )


def _product_totals(rows: QuerySet) -> list[ProductTotal]:
    return [
        ProductTotal(
            product_id=row["product_id"], product_code=row["product__internal_code"], product_name=row["product__name"],
            specification=row["product__specification"], quantity=row["total_quantity"],
            amount=_cents(row["total_amount"]),
        )
        for row in rows.order_by("product__internal_code")
    ]


def _cents(amount: Decimal) -> Decimal:
    """A sum rounded to cents: SQLite adds decimals as floating-point numbers."""
    return amount.quantize(CENT)
