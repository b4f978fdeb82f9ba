"""What stock a person sees, and the stock lists: units and lot balances, filtered, for pages and exports.

A person sees their own hospital's stock (alliance administrators every hospital's). A nurse with no
wider role sees only their departments: the stock at those departments' locations, the uses ordered
by them, the alerts and devices of those locations. `StockScope` is that rule in one place; every
page, the dashboard and the exports start from it.
"""
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from devices.identification import ParseError, parse_udi
from devices.models import Device, DeviceEvent
from inventory.models import (
    Alert,
    CabinetSession,
    ChargeDelivery,
    Consumption,
    Location,
    LotBalance,
    LotCostLayer,
    Movement,
    Owner,
    Product,
    Supplier,
    SupplyAgreement,
    Unit,
    UnitStatus,
    User,
)
from inventory.selectors.scope import departments_of, visible_to

# Units still in the hospital's hands: what "stock" means on the stock page and the dashboard.
HELD = (UnitStatus.ACCEPTED, UnitStatus.IN_STOCK, UnitStatus.IN_CABINET, UnitStatus.TAKEN)


@dataclass(frozen=True)
class StockScope:
    """The part of the data one person may see: a hospital, or some departments of it."""

    user: User
    department_ids: frozenset[int] | None  # None: the whole hospital

    @classmethod
    def of(cls, user: User) -> "StockScope":
        return cls(user, departments_of(user))

    @property
    def is_departmental(self) -> bool:
        return self.department_ids is not None

    def _in_departments(self, queryset: QuerySet, *paths: str) -> QuerySet:
        if self.department_ids is None:
            return queryset
        condition = Q()
        for path in paths:
            condition |= Q(**{f"{path}__in": self.department_ids})
        return queryset.filter(condition)

    def locations(self) -> QuerySet:
        return self._in_departments(visible_to(self.user, Location.objects.all()), "department")

    def units(self) -> QuerySet:
        """Units the person may list: those at their locations (all of the hospital's for most roles)."""
        return self._in_departments(visible_to(self.user, Unit.objects.all()), "location__department")

    def lot_balances(self) -> QuerySet:
        return self._in_departments(visible_to(self.user, LotBalance.objects.all()), "location__department")

    def consumptions(self) -> QuerySet:
        return self._in_departments(visible_to(self.user, Consumption.objects.all()), "department")

    def charge_deliveries(self) -> QuerySet:
        return self._in_departments(
            visible_to(self.user, ChargeDelivery.objects.all(), "charge__hospital"), "charge__consumption__department"
        )

    def alerts(self) -> QuerySet:
        return self._in_departments(
            visible_to(self.user, Alert.objects.all()), "location__department", "unit__location__department"
        )

    def movements(self) -> QuerySet:
        """Ledger rows into or out of the person's locations (every one of the hospital's for most roles)."""
        return self._in_departments(
            visible_to(self.user, Movement.objects.all()), "from_location__department", "to_location__department"
        )

    def cabinet_sessions(self) -> QuerySet:
        return self._in_departments(
            visible_to(self.user, CabinetSession.objects.all(), "cabinet__hospital"), "cabinet__department"
        )

    def devices(self) -> QuerySet:
        return self._in_departments(visible_to(self.user, Device.objects.all()), "location__department")

    def device_events(self) -> QuerySet:
        """The events of the devices the person sees (a nurse: those at her departments' locations)."""
        return self._in_departments(
            visible_to(self.user, DeviceEvent.objects.all(), "device__hospital"), "device__location__department"
        )

    def products(self) -> QuerySet:
        return visible_to(self.user, Product.objects.all())

    def suppliers(self) -> QuerySet:
        """Suppliers with a supply agreement with the person's hospital (suppliers are shared)."""
        agreements = visible_to(self.user, SupplyAgreement.objects.all())
        return Supplier.objects.filter(pk__in=agreements.values("supplier_id")).order_by("name")

    def traceable_units(self) -> QuerySet:
        """Units whose trace the person may open: any of their hospital's, or — for a nurse — those
        that are, or have been, at a location of their departments or used by them."""
        units = visible_to(self.user, Unit.objects.all())
        if self.department_ids is None:
            return units
        ids = self.department_ids
        moved_here = Movement.objects.filter(unit=OuterRef("pk")).filter(
            Q(from_location__department__in=ids) | Q(to_location__department__in=ids)
        )
        used_here = Consumption.objects.filter(unit=OuterRef("pk"), department__in=ids)
        return units.filter(Q(location__department__in=ids) | Exists(moved_here) | Exists(used_here))


# --- the stock lists ------------------------------------------------------------------------------

ON_HAND = "ON_HAND"  # the default status filter: every held status
ANY_STATUS = "ANY"


@dataclass(frozen=True)
class StockFilters:
    """What the stock page filters by. Empty fields do not filter."""

    product: Product | None = None
    location: Location | None = None
    status: str = ON_HAND  # ON_HAND, ANY_STATUS or one UnitStatus
    expiry_before: datetime.date | None = None  # expiring on or before this day
    expiry_after: datetime.date | None = None  # expiring on or after this day (a dashboard's expiry tier)
    supplier: Supplier | None = None
    consignment: bool | None = None  # True: supplier-owned (寄售) only, False: hospital-owned only
    text: str = ""  # serial, lot, product name/code, or a scanned UDI


def filter_units(scope: StockScope, filters: StockFilters) -> QuerySet:
    """The units of the scope matching the filters, soonest expiry first, with what a row shows."""
    units = scope.units()
    if filters.status == ON_HAND:
        units = units.filter(status__in=HELD)
    elif filters.status != ANY_STATUS:
        units = units.filter(status=filters.status)
    if filters.product is not None:
        units = units.filter(product=filters.product)
    if filters.location is not None:
        units = units.filter(location=filters.location)
    if filters.expiry_before is not None:
        units = units.filter(expiry__lte=filters.expiry_before)
    if filters.expiry_after is not None:
        units = units.filter(expiry__gte=filters.expiry_after)
    if filters.supplier is not None:
        units = units.filter(supplier=filters.supplier)
    if filters.consignment is not None:
        units = units.filter(owner=Owner.SUPPLIER if filters.consignment else Owner.HOSPITAL)
    if text := filters.text.strip():
        units = units.filter(_unit_text_condition(text))
    return units.select_related("product", "location", "supplier").order_by("expiry", "product__internal_code", "pk")


def _name_condition(text: str, product: str = "product__") -> Q:
    """Typed words that all appear in a product's name or specification, in any order
    ("支架 3.0" finds "药物洗脱冠脉支架", specification "3.0×18mm")."""
    condition = Q()
    for word in text.split():
        condition &= Q(**{f"{product}name__icontains": word}) | Q(**{f"{product}specification__icontains": word})
    return condition


def _unit_text_condition(text: str) -> Q:
    """A scanned UDI finds its unit (or product); other text matches serial, lot, code or name."""
    condition = (
        Q(serial__iexact=text) | Q(lot__iexact=text) | Q(epc__iexact=text) | Q(product__internal_code__iexact=text)
        | _name_condition(text) | Q(di=text)
    )
    try:
        parsed = parse_udi(text)
    except ParseError:
        return condition
    if parsed.serial:
        return condition | Q(di=parsed.di, serial=parsed.serial)
    return condition | Q(di=parsed.di)


SUGGESTIONS = 20


def find_product(products: QuerySet, code: str) -> Product | None:
    """The product of `products` whose internal code (any case) or UDI-DI is `code`, or whose UDI-DI a
    scanned UDI carries."""
    found = products.filter(Q(internal_code__iexact=code) | Q(udi_di=code)).order_by("internal_code").first()
    if found is not None:
        return found
    try:
        parsed = parse_udi(code)
    except ParseError:
        return None
    return products.filter(udi_di=parsed.di).order_by("internal_code").first() if parsed.di else None


def suggest_products(scope: StockScope, text: str, *, hospital_id: int | None = None) -> list[Product]:
    """Up to SUGGESTIONS active products of the scope (of one of its hospitals if `hospital_id` is
    given) whose code or UDI-DI starts with `text`, or whose name contains it: what a product field
    offers as one types."""
    text = text.strip()
    if not text:
        return []
    products = scope.products() if hospital_id is None else scope.products().filter(hospital_id=hospital_id)
    matching = products.filter(is_active=True).filter(
        Q(internal_code__istartswith=text) | Q(udi_di__startswith=text) | Q(name__icontains=text)
    )
    return list(matching.order_by("internal_code")[:SUGGESTIONS])


def filter_lot_balances(scope: StockScope, filters: StockFilters) -> QuerySet:
    """The lot balances of the scope matching the filters (status does not apply to lots; empty
    balances are left out), soonest expiry first. A lot's supplier is the one with a supply
    agreement for its product."""
    balances = scope.lot_balances().filter(quantity__gt=0)
    if filters.product is not None:
        balances = balances.filter(product=filters.product)
    if filters.location is not None:
        balances = balances.filter(location=filters.location)
    if filters.expiry_before is not None:
        balances = balances.filter(expiry__lte=filters.expiry_before)
    if filters.expiry_after is not None:
        balances = balances.filter(expiry__gte=filters.expiry_after)
    if filters.supplier is not None:
        balances = balances.filter(product__agreements__supplier=filters.supplier).distinct()
    if filters.consignment is not None:
        balances = balances.filter(owner=Owner.SUPPLIER if filters.consignment else Owner.HOSPITAL)
    if text := filters.text.strip():
        condition = (
            Q(lot__iexact=text) | Q(product__internal_code__iexact=text) | _name_condition(text)
            | Q(product__udi_di=text)
        )
        try:
            parsed = parse_udi(text)
        except ParseError:
            parsed = None
        if parsed is not None and parsed.di:
            condition |= Q(product__udi_di=parsed.di, **({"lot": parsed.lot} if parsed.lot else {}))
        balances = balances.filter(condition)
    money = DecimalField(max_digits=16, decimal_places=2)
    # Valued layer by layer: a lot received at two prices is worth what each receipt cost.
    layer_value = (
        LotCostLayer.objects.filter(balance=OuterRef("pk")).order_by().values("balance")
        .annotate(value=Sum(ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=money))).values("value")
    )
    return balances.select_related("product", "location").annotate(
        value=Coalesce(Subquery(layer_value, output_field=money), Value(Decimal("0")), output_field=money)
    ).order_by("expiry", "product__internal_code", "pk")


# --- exports --------------------------------------------------------------------------------------

UNIT_COLUMNS = (
    _("Internal code"), _("Product"), _("Specification"), _("UDI-DI"), _("Lot"), _("Serial"), _("Expiry"),
    _("Status"), _("Location"), _("Supplier"), _("Owner"), _("Unit cost"), _("Gift"), _("RFID EPC"), _("Unit id"),
)
LOT_COLUMNS = (
    _("Internal code"), _("Product"), _("Specification"), _("Lot"), _("Expiry"), _("Location"), _("Owner"),
    _("Quantity"), _("Unit of measure"), _("Unit cost"), _("Value"),
)


def unit_export_rows(units: QuerySet) -> Iterator[tuple]:
    """One row per unit in UNIT_COLUMNS order, with labels in the active language."""
    status_labels, owner_labels = dict(UnitStatus.choices), dict(Owner.choices)
    for unit in units.iterator(chunk_size=1000):
        product = unit.product
        yield (
            product.internal_code, product.name, product.specification, unit.di, unit.lot, unit.serial, unit.expiry,
            str(status_labels.get(unit.status, unit.status)), unit.location.name if unit.location else "",
            unit.supplier.name, str(owner_labels.get(unit.owner, unit.owner)), unit.unit_cost,
            gettext("yes") if unit.is_gift else "", unit.epc or "", unit.pk,
        )


def lot_export_rows(balances: QuerySet) -> Iterator[tuple]:
    """One row per lot balance in LOT_COLUMNS order."""
    owner_labels = dict(Owner.choices)
    for balance in balances.iterator(chunk_size=1000):
        product = balance.product
        yield (
            product.internal_code, product.name, product.specification, balance.lot, balance.expiry,
            balance.location.name, str(owner_labels.get(balance.owner, balance.owner)), balance.quantity,
            product.unit_of_measure, balance.unit_cost, Decimal(str(balance.value)).quantize(Decimal("0.01")),
        )
