"""What a supplier's user sees of a consignment settlement statement (供应商门户·寄售结算单).

The statements addressed to the user's supplier, across the hospitals it serves, once the hospital
has issued them (a draft never issued is the hospital's alone). Their lines carry what the supplier
needs to check its bill — product, UDI, serial, lot, quantity, price, amount, the day of use — and
nothing of the patient or the hospital's inside: no encounter number, no department, no person.
"""
import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from inventory.models import SupplierSettlement, SupplierSettlementEvent, SupplierSettlementLine, User
from inventory.selectors.settlements import statements_with_totals

# The columns of the supplier's files (CSV, XLSX, PDF), in Chinese like the hospital's statement files.
COLUMNS = ("序号", "院内码", "产品名称", "规格型号", "UDI", "序列号", "批号", "使用日期", "数量", "单价", "金额")


@dataclass(frozen=True)
class PortalStatementLine:
    number: int
    product_id: int
    product_code: str
    product_name: str
    specification: str
    udi: str
    serial: str
    lot: str
    used_on: datetime.date
    quantity: int
    unit_price: Decimal
    amount: Decimal

    def as_row(self) -> list:
        return [self.number, self.product_code, self.product_name, self.specification, self.udi, self.serial,
                self.lot, self.used_on, self.quantity, self.unit_price, self.amount]


def portal_statements(user: User) -> QuerySet:
    """The statements issued (at least once) to the user's supplier, with their totals."""
    if not user.is_authenticated or user.supplier_id is None:
        return SupplierSettlement.objects.none()
    issued = SupplierSettlementEvent.objects.filter(
        settlement=OuterRef("pk"), kind=SupplierSettlementEvent.Kind.ISSUED
    )
    return statements_with_totals(
        SupplierSettlement.objects.filter(supplier_id=user.supplier_id).filter(Exists(issued))
    ).select_related("hospital")


def statement_lines(settlement: SupplierSettlement) -> list[PortalStatementLine]:
    """The statement's lines in order of use, as the supplier sees them (one query)."""
    lines = (
        SupplierSettlementLine.objects.filter(settlement=settlement)
        .select_related("product", "unit")
        .order_by("consumption__occurred_at", "consumption_id")
        .values_list(
            "product_id", "product__internal_code", "product__name", "product__specification", "unit__udi",
            "unit__serial", "lot", "consumption__occurred_at", "quantity", "unit_price", "amount",
        )
    )
    return [
        PortalStatementLine(
            number, product_id, code, name, specification, udi or "", serial or "", lot,
            timezone.localdate(used_at), quantity, unit_price, amount,
        )
        for number, (product_id, code, name, specification, udi, serial, lot, used_at, quantity, unit_price, amount)
        in enumerate(lines, start=1)
    ]


def statement_events(settlement: SupplierSettlement) -> QuerySet:
    """Every step of the exchange, oldest first, with who took it."""
    return SupplierSettlementEvent.objects.filter(settlement=settlement).select_related("by").order_by("at", "pk")


def person(user: User) -> str:
    """A person as the other side sees them: their name, else their user name."""
    return f"{user.last_name}{user.first_name}".strip() or user.username
