"""The department's consumable cost (科室耗材成本): what was expensed to each department in a period.

One set-based read over the cost layers of the period's DEPARTMENT_EXPENSE movements
(`services/expensing.py`): quantity in the product's base unit and value at the cost of the layers
drawn, per department × product, scoped to what the person may see (a nurse: her departments).
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Sum

from inventory.models import LotMovementLayer, Movement, Product
from inventory.selectors.settlements import period_bounds
from inventory.selectors.stock import StockScope
from inventory.services.units_of_measure import describe_quantity

MONEY = DecimalField(max_digits=18, decimal_places=2)
CENT = Decimal("0.01")

# The export's columns (CSV / XLSX): base units, as every export.
COLUMNS = ("科室编码", "科室", "院内码", "产品名称", "规格型号", "库存单位", "数量", "金额")


@dataclass(frozen=True)
class DepartmentCostRow:
    department_id: int
    department_code: str
    department_name: str
    product: Product
    quantity: int
    value: Decimal

    @property
    def described(self) -> str:
        """The quantity in the product's packaging units: "3 盒 4 支"."""
        return describe_quantity(product=self.product, base_quantity=self.quantity)

    def export_row(self) -> list:
        product = self.product
        return [self.department_code, self.department_name, product.internal_code, product.name,
                product.specification, product.unit_of_measure, self.quantity, self.value]


@dataclass(frozen=True)
class DepartmentCost:
    """The report: rows by department then product, each department's total value, the grand total."""

    start: datetime.date
    end: datetime.date
    rows: list[DepartmentCostRow]

    @property
    def total(self) -> Decimal:
        return sum((row.value for row in self.rows), Decimal("0.00"))

    def by_department(self) -> list[tuple[str, str, list[DepartmentCostRow], Decimal]]:
        """(code, name, rows, total value) per department, in the rows' order."""
        groups: dict[int, tuple[str, str, list[DepartmentCostRow]]] = {}
        for row in self.rows:
            groups.setdefault(row.department_id, (row.department_code, row.department_name, []))[2].append(row)
        return [(code, name, rows, sum((row.value for row in rows), Decimal("0.00")))
                for code, name, rows in groups.values()]


def department_cost(
    scope: StockScope, *, start: datetime.date, end: datetime.date, department_id: int | None = None
) -> DepartmentCost:
    """What each department the person may see had expensed from `start` to `end` (local days, end
    included), per product: quantity (base units) and value (cost of the layers drawn)."""
    begin, finish = period_bounds(start, end)
    expenses = scope.movements().filter(
        kind=Movement.Kind.DEPARTMENT_EXPENSE, occurred_at__gte=begin, occurred_at__lt=finish,
    )
    if department_id is not None:
        expenses = expenses.filter(from_location__department_id=department_id)
    sums = (
        LotMovementLayer.objects.filter(movement__in=expenses.values("pk"))
        .values("movement__from_location__department_id", "movement__from_location__department__code",
                "movement__from_location__department__name", "movement__product_id")
        .annotate(quantity=Sum("quantity"),
                  value=Sum(ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY)))
        .order_by("movement__from_location__department__code", "movement__product__internal_code")
    )
    sums = list(sums)
    products = Product.objects.prefetch_related("packaging_units").in_bulk({row["movement__product_id"] for row in sums})
    rows = [
        DepartmentCostRow(
            row["movement__from_location__department_id"], row["movement__from_location__department__code"],
            row["movement__from_location__department__name"], products[row["movement__product_id"]],
            int(row["quantity"]), Decimal(row["value"] or 0).quantize(CENT),
        )
        for row in sums
    ]
    return DepartmentCost(start, end, rows)

