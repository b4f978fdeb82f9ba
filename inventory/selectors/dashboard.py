"""The dashboard's figures, each one aggregate over the person's scope (see selectors.stock.StockScope).

Every function is a handful of set-based queries (`values()` + `annotate()`/`aggregate()` with
filtered counts and sums); none loops over rows issuing queries.
"""
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from devices.models import Device
from inventory.models import Alert, ChargeDelivery, Location, LotCostLayer, Owner
from inventory.selectors.settlements import period_bounds
from inventory.selectors.stock import HELD, StockScope

MONEY = DecimalField(max_digits=16, decimal_places=2)
CENT = Decimal("0.01")
CABINET_KINDS = (Device.Kind.CABINET_HTTP, Device.Kind.CABINET_MQTT)


def _cents(value: Decimal | None) -> Decimal:
    """A sum rounded to cents (SQLite adds decimals as floating-point numbers)."""
    return Decimal(value or 0).quantize(CENT)


@dataclass(frozen=True)
class AlertCount:
    kind: str
    label: str
    open: int  # not acknowledged yet
    acknowledged: int
    critical: int

    @property
    def total(self) -> int:
        return self.open + self.acknowledged


def open_alerts_by_kind(scope: StockScope) -> list[AlertCount]:
    """Unresolved alerts per kind, most first: how many are still unacknowledged, how many critical."""
    rows = (
        scope.alerts().exclude(status=Alert.Status.RESOLVED).order_by().values("kind")
        .annotate(
            open=Count("pk", filter=Q(status=Alert.Status.OPEN)),
            acknowledged=Count("pk", filter=Q(status=Alert.Status.ACKNOWLEDGED)),
            critical=Count("pk", filter=Q(severity=Alert.Severity.CRITICAL)),
        )
    )
    labels = dict(Alert.Kind.choices)
    counts = [
        AlertCount(row["kind"], str(labels.get(row["kind"], row["kind"])), row["open"], row["acknowledged"], row["critical"])
        for row in rows
    ]
    return sorted(counts, key=lambda count: (-count.total, count.kind))


@dataclass(frozen=True)
class ExpiryTier:
    """Held units and lot quantities expiring within a tier: (previous tier, `days`] days from today.
    `days` None is the already-expired bucket."""

    days: int | None
    after_days: int  # the previous (narrower) tier's bound, 0 for the first
    units: int
    lot_quantity: int


def near_expiry_by_tier(scope: StockScope, tiers: tuple[int, ...], today: datetime.date | None = None) -> list[ExpiryTier]:
    """Expired stock first, then each tier narrowest first (e.g. ≤30, 31–60, 61–90 days)."""
    today = today or timezone.localdate()
    bounds = sorted(set(tiers))
    buckets: list[tuple[str, Q, int | None, int]] = [("expired", Q(expiry__lt=today), None, 0)]
    previous = -1
    for days in bounds:
        low = today + datetime.timedelta(days=previous + 1)
        buckets.append((f"t{days}", Q(expiry__gte=low, expiry__lte=today + datetime.timedelta(days=days)), days,
                        max(previous, 0)))
        previous = days
    units = scope.units().filter(status__in=HELD).aggregate(
        **{name: Count("pk", filter=condition) for name, condition, _, _ in buckets}
    )
    lots = scope.lot_balances().filter(quantity__gt=0).aggregate(
        **{name: Coalesce(Sum("quantity", filter=condition), 0) for name, condition, _, _ in buckets}
    )
    return [ExpiryTier(days, after, units[name], lots[name]) for name, _, days, after in buckets]


@dataclass(frozen=True)
class LocationValue:
    location_id: int
    name: str
    kind: str
    kind_label: str
    units: int
    lot_quantity: int
    owned_value: Decimal  # the hospital's own stock
    consignment_value: Decimal  # still the supplier's (寄售)

    @property
    def total(self) -> Decimal:
        return self.owned_value + self.consignment_value


@dataclass(frozen=True)
class StockValue:
    locations: list[LocationValue]

    @property
    def owned_value(self) -> Decimal:
        return sum((row.owned_value for row in self.locations), Decimal("0.00"))

    @property
    def consignment_value(self) -> Decimal:
        return sum((row.consignment_value for row in self.locations), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.owned_value + self.consignment_value


def stock_value_by_location(scope: StockScope) -> StockValue:
    """Value at cost of the held units and lot balances per location, own and consignment apart."""
    consigned = Q(owner=Owner.SUPPLIER)
    unit_rows = {
        row["location_id"]: row
        for row in scope.units().filter(status__in=HELD, location__isnull=False).order_by().values("location_id")
        .annotate(
            n=Count("pk"),
            owned=Sum("unit_cost", filter=~consigned, output_field=MONEY),
            consigned=Sum("unit_cost", filter=consigned, output_field=MONEY),
        )
    }
    # Lots are valued layer by layer: a lot received at two prices is worth what each receipt cost.
    lot_value = ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY)
    consigned_lot = Q(balance__owner=Owner.SUPPLIER)
    lot_rows = {
        row["location_id"]: row
        for row in LotCostLayer.objects.filter(balance__in=scope.lot_balances(), quantity__gt=0).order_by()
        .values(location_id=F("balance__location_id"))
        .annotate(
            n=Sum("quantity"),
            owned=Sum(lot_value, filter=~consigned_lot, output_field=MONEY),
            consigned=Sum(lot_value, filter=consigned_lot, output_field=MONEY),
        )
    }
    kinds = dict(Location.Kind.choices)
    rows = []
    for location in Location.objects.filter(pk__in=unit_rows.keys() | lot_rows.keys()).order_by("code"):
        units, lots = unit_rows.get(location.pk, {}), lot_rows.get(location.pk, {})
        rows.append(LocationValue(
            location.pk, location.name, location.kind, str(kinds.get(location.kind, location.kind)),
            units.get("n", 0), lots.get("n", 0) or 0,
            _cents(units.get("owned")) + _cents(lots.get("owned")),
            _cents(units.get("consigned")) + _cents(lots.get("consigned")),
        ))
    rows.sort(key=lambda row: (-row.total, row.name))
    return StockValue(rows)


@dataclass(frozen=True)
class DepartmentUse:
    department: str
    uses: int
    amount: Decimal


@dataclass(frozen=True)
class ConsumptionToday:
    uses: int
    quantity: int
    amount: Decimal
    refunded: int
    departments: list[DepartmentUse] = field(default_factory=list)


def consumption_today(scope: StockScope, today: datetime.date | None = None) -> ConsumptionToday:
    """Uses on patients recorded for today (local calendar day): not refunded ones count, refunds apart."""
    start, end = period_bounds(today or timezone.localdate(), today or timezone.localdate())
    used = scope.consumptions().filter(occurred_at__gte=start, occurred_at__lt=end)
    amount = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)
    live = Q(refunded_at__isnull=True)
    totals = used.aggregate(
        total_uses=Count("pk", filter=live), total_quantity=Coalesce(Sum("quantity", filter=live), 0),
        total_amount=Sum(amount, filter=live, output_field=MONEY), total_refunded=Count("pk", filter=~live),
    )
    departments = [
        DepartmentUse(row["department__name"], row["uses"], _cents(row["total_amount"]))
        for row in used.filter(live).order_by().values("department__name")
        .annotate(uses=Count("pk"), total_amount=Sum(amount, output_field=MONEY))
        .order_by("-total_amount", "department__name")
    ]
    return ConsumptionToday(
        totals["total_uses"], totals["total_quantity"], _cents(totals["total_amount"]), totals["total_refunded"],
        departments,
    )


@dataclass(frozen=True)
class CabinetState:
    online: int
    offline: list[Device]

    @property
    def total(self) -> int:
        return self.online + len(self.offline)


def cabinets_online(scope: StockScope) -> CabinetState:
    """Active smart-cabinet devices, by whether they have been heard from recently (Device.is_online).

    One query; a hospital has a few dozen cabinets at most, so the per-device silence threshold is
    compared here rather than in SQL."""
    cabinets = list(scope.devices().filter(kind__in=CABINET_KINDS, is_active=True).select_related("location")
                    .order_by("code"))
    offline = [device for device in cabinets if not device.is_online]
    return CabinetState(len(cabinets) - len(offline), offline)


@dataclass(frozen=True)
class HisFailures:
    failing: int  # FAILED: retried with back-off
    gave_up: int  # needs a manual resend
    pending: int
    failing_since: datetime.datetime | None

    @property
    def total(self) -> int:
        return self.failing + self.gave_up


def his_deliveries_failing(scope: StockScope) -> HisFailures:
    """Charges not reaching the HIS: failing (still retried), given up, and the oldest failure."""
    Status = ChargeDelivery.Status
    totals = scope.charge_deliveries().aggregate(
        failing=Count("pk", filter=Q(status=Status.FAILED)),
        gave_up=Count("pk", filter=Q(status=Status.GAVE_UP)),
        pending=Count("pk", filter=Q(status=Status.PENDING)),
        since=Min("first_failed_at", filter=Q(status__in=(Status.FAILED, Status.GAVE_UP))),
    )
    return HisFailures(totals["failing"], totals["gave_up"], totals["pending"], totals["since"])


@dataclass(frozen=True)
class Dashboard:
    alerts: list[AlertCount]
    expiry: list[ExpiryTier]
    stock_value: StockValue
    consumption: ConsumptionToday
    cabinets: CabinetState
    his: HisFailures

    @property
    def open_alerts(self) -> int:
        return sum(count.total for count in self.alerts)


def dashboard(scope: StockScope, *, tiers: tuple[int, ...], today: datetime.date | None = None) -> Dashboard:
    today = today or timezone.localdate()
    return Dashboard(
        alerts=open_alerts_by_kind(scope),
        expiry=near_expiry_by_tier(scope, tiers, today),
        stock_value=stock_value_by_location(scope),
        consumption=consumption_today(scope, today),
        cabinets=cabinets_online(scope),
        his=his_deliveries_failing(scope),
    )
