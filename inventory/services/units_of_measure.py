"""Units of measure (包装单位) and 拆零: converting quantities and prices at the edges, exactly.

Stock, the ledger and uses are always in the product's base unit (`Product.unit_of_measure`, e.g.
支). A product may name packaging units holding a whole number of base units (盒 = 10 支, 箱 = 100
支); one of them may be its purchase unit (a delivery is received in it), one its billing unit
(约定计价单位: charges go to the HIS in it). A product without them buys and bills in its base
unit, factor 1, so nothing changes for it.

Every conversion here is integer or `Decimal` arithmetic, never float, and a conversion that is
not exact is refused (`Refused`), never rounded: 2.5 盒 of a 10-支 box is 25 支 and fine; 0.55 盒
is 5.5 支 and refused. Opening a box (拆零) is no movement: a partial box is simply base units.

Functions take the product's packaging units from `product.packaging_units.all()`, so a caller
listing many products can `prefetch_related("packaging_units")` once.
"""
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from inventory.errors import Refusal, Refused
from inventory.models import PackagingUnit, Product

CENT = Decimal("0.01")


@dataclass(frozen=True)
class UnitOfMeasure:
    """A unit a product can be counted in: its base unit (factor 1) or one of its packaging units."""

    name: str
    factor: int
    is_purchase_unit: bool = False
    is_billing_unit: bool = False


@dataclass(frozen=True)
class BilledQuantity:
    """A use of `base_quantity` base units expressed in the billing unit: `quantity` × `unit_price`.

    `amount` equals base quantity × base price exactly: the price per billing unit is the base
    price times the factor, the quantity the base quantity divided by it (refused when not whole).
    """

    unit: str
    factor: int
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


def units_of(product: Product) -> list[UnitOfMeasure]:
    """The product's units, largest first, ending with the base unit."""
    packaging = sorted(product.packaging_units.all(), key=lambda unit: -unit.factor)
    return [
        *(UnitOfMeasure(unit.name, unit.factor, unit.is_purchase_unit, unit.is_billing_unit) for unit in packaging),
        UnitOfMeasure(
            product.unit_of_measure, 1,
            is_purchase_unit=not any(unit.is_purchase_unit for unit in packaging),
            is_billing_unit=not any(unit.is_billing_unit for unit in packaging),
        ),
    ]


def unit_named(*, product: Product, unit: str = "", field: str = "unit") -> UnitOfMeasure:
    """The unit of that name ("" or the base unit's name: the base unit); refused when unknown."""
    name = (unit or "").strip()
    units = units_of(product)
    if not name:
        return units[-1]
    for known in units:
        if known.name == name:
            return known
    raise Refused(
        Refusal.UNKNOWN_PACKAGING_UNIT, item=field, field=field, product=product.internal_code, unit=name,
        units="、".join(known.name for known in units),
    )


def purchase_unit(product: Product) -> UnitOfMeasure:
    return next(unit for unit in units_of(product) if unit.is_purchase_unit)


def billing_unit(product: Product) -> UnitOfMeasure:
    return next(unit for unit in units_of(product) if unit.is_billing_unit)


def to_base_quantity(
    *, product: Product, quantity: int | Decimal, unit: str = "", field: str = "quantity", unit_field: str = "unit",
    allow_zero: bool = True,
) -> int:
    """`quantity` of the named unit in base units: an exact whole number, or refused.

    Refused: an unknown unit (UNKNOWN_PACKAGING_UNIT, naming `unit_field`), a quantity below zero
    (or zero, with `allow_zero=False`: QUANTITY_NOT_POSITIVE) and a result that is not a whole base
    quantity (QUANTITY_NOT_WHOLE_BASE_UNITS), each naming `field`.
    """
    named = unit_named(product=product, unit=unit, field=unit_field)
    if isinstance(quantity, bool) or not isinstance(quantity, int | Decimal):
        raise TypeError("quantity must be an int or a Decimal")
    try:
        exact = Decimal(quantity)
        base = exact * named.factor
        whole = base == base.to_integral_value()
    except InvalidOperation:
        whole = False
    if not whole or not exact.is_finite():
        raise Refused(
            Refusal.QUANTITY_NOT_WHOLE_BASE_UNITS, item=field, field=field, quantity=quantity, unit=named.name,
            base=product.unit_of_measure, factor=named.factor,
        )
    if base < 0 or (base == 0 and not allow_zero):
        raise Refused(Refusal.QUANTITY_NOT_POSITIVE, item=field, field=field, quantity=quantity)
    return int(base)


def base_unit_price(
    *, product: Product, unit_price: Decimal, unit: str = "", field: str = "unit_price", unit_field: str = "unit"
) -> Decimal:
    """The price of one base unit, given the price of one `unit`: refused unless whole cents."""
    named = unit_named(product=product, unit=unit, field=unit_field)
    price = Decimal(unit_price) / named.factor
    if price != price.quantize(CENT):
        raise Refused(
            Refusal.PRICE_NOT_WHOLE_CENTS_PER_BASE_UNIT, item=field, field=field, price=unit_price, unit=named.name,
            base=product.unit_of_measure, factor=named.factor,
        )
    return price.quantize(CENT)


def describe_quantity(*, product: Product, base_quantity: int) -> str:
    """A base quantity in the product's units, largest first: "3 盒 4 支"; "0 支" for nothing.

    A negative quantity is described by its size with a leading minus ("-1 盒 2 支")."""
    if base_quantity == 0:
        return f"0 {product.unit_of_measure}"
    sign, rest = ("-" if base_quantity < 0 else ""), abs(base_quantity)
    parts = []
    for unit in units_of(product):
        count, rest = divmod(rest, unit.factor)
        if count:
            parts.append(f"{count} {unit.name}")
    return sign + " ".join(parts)


def describe_in_unit(*, quantity: int, unit: str, base_unit: str) -> str:
    """A quantity as received or billed in one named unit: "3 盒" (the base unit when `unit` is "")."""
    return f"{quantity} {unit or base_unit}"


def round_up_to_unit(*, product: Product, base_quantity: int, unit: str = "") -> int:
    """`base_quantity` rounded up to a whole number of `unit` (default: the purchase unit), in base units.

    Replenishment and picking hand out whole boxes: 23 支 of a 10-支 box is 30 支. Zero or less
    stays as it is (nothing to hand out)."""
    named = unit_named(product=product, unit=unit) if unit else purchase_unit(product)
    if base_quantity <= 0:
        return base_quantity
    return -(-base_quantity // named.factor) * named.factor


def billing_unit_of(product: Product, *, name: str | None, factor: int | None) -> UnitOfMeasure:
    """The billing unit from its packaging unit's name and factor read with the product (None, None:
    it has none and bills in its base unit)."""
    if name is None:
        return UnitOfMeasure(product.unit_of_measure, 1, is_billing_unit=True)
    return UnitOfMeasure(name, factor, is_billing_unit=True)


def in_billing_unit(
    *, product: Product, base_quantity: int, base_unit_price: Decimal, billing: UnitOfMeasure | None = None,
) -> BilledQuantity:
    """A use of `base_quantity` base units at `base_unit_price` each, expressed in the billing unit
    (`billing` when the caller read it already, e.g. with `billing_unit_of`).

    Refused (NOT_WHOLE_BILLING_UNITS) when the quantity is not a whole number of billing units: the
    HIS would have to bill a fraction. The converted price is exact (Decimal × integer)."""
    billing = billing or billing_unit(product)
    quantity, rest = divmod(base_quantity, billing.factor)
    if rest:
        raise Refused(
            Refusal.NOT_WHOLE_BILLING_UNITS, product=product.internal_code, quantity=base_quantity,
            base=product.unit_of_measure, unit=billing.name, factor=billing.factor,
        )
    return BilledQuantity(billing.name, billing.factor, quantity, Decimal(base_unit_price) * billing.factor)


def packaging_unit_problems(*, product: Product, units: list[PackagingUnit]) -> list[tuple[str, str]]:
    """Why a set of packaging units cannot be the product's, as (field, reason) pairs; [] when fine.

    The database holds the same rules (unique names and factors, one purchase and one billing unit,
    factor ≥ 2); checking here lets the API and the admin say which field is wrong."""
    problems = []
    names = [unit.name.strip() for unit in units]
    for index, unit in enumerate(units):
        where = f"packaging_units[{index}]"
        if not names[index]:
            problems.append((f"{where}.name", "required"))
        elif names[index] == product.unit_of_measure:
            problems.append((f"{where}.name", "is the base unit's name"))
        elif names.index(names[index]) != index:
            problems.append((f"{where}.name", "appears twice"))
        if unit.factor is None or unit.factor < 2:
            problems.append((f"{where}.factor", "must be a whole number of at least 2"))
        elif [other.factor for other in units].index(unit.factor) != index:
            problems.append((f"{where}.factor", "two units hold the same number of base units"))
    if sum(unit.is_purchase_unit for unit in units) > 1:
        problems.append(("packaging_units", "at most one purchase unit"))
    if sum(unit.is_billing_unit for unit in units) > 1:
        problems.append(("packaging_units", "at most one billing unit"))
    return problems
