"""The dashboard's figures, each one aggregate over the person's scope (see selectors.stock.StockScope).

Every function is a handful of set-based queries (`values()` + `annotate()`/`aggregate()` with
filtered counts and sums); none loops over rows issuing queries.
"""
import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from devices.models import Device
from inventory.models import Alert, ChargeDelivery, DeliveryNote, Location, LotCostLayer, Owner
from inventory.selectors.scope import visible_to
from inventory.selectors.settlements import period_bounds
from inventory.selectors.stock import HELD, StockScope

MONEY = DecimalField(max_digits=16, decimal_places=2)
CENT = Decimal("0.01")
CABINET_KINDS = (Device.Kind.CABINET_HTTP, Device.Kind.CABINET_MQTT)


def _cents(value: Decimal | None) -> Decimal:
    """A sum rounded to cents (SQLite adds decimals as floating-point numbers)."""
    return Decimal(value or 0).quantize(CENT)


@dataclass(frozen=True)
class Quantity:
    """An amount of lot stock in one product unit of measure (盒, 支, 套): lot quantities of
    different measures are never added into one number."""

    amount: int
    measure: str


def _by_measure(amounts: Iterable[tuple[str, int]]) -> tuple[Quantity, ...]:
    """(measure, amount) pairs added up per measure, largest first, empty amounts left out."""
    totals: dict[str, int] = defaultdict(int)
    for measure, amount in amounts:
        totals[measure] += amount or 0
    return tuple(sorted((Quantity(amount, measure) for measure, amount in totals.items() if amount),
                        key=lambda quantity: (-quantity.amount, quantity.measure)))


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
    lot_quantities: tuple[Quantity, ...]
    first_day: datetime.date | None  # the expiry dates of the tier, for the link to the stock list
    last_day: datetime.date


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
    lots = list(
        scope.lot_balances().filter(quantity__gt=0).order_by().values(measure=F("product__unit_of_measure"))
        .annotate(**{name: Coalesce(Sum("quantity", filter=condition), 0) for name, condition, _, _ in buckets})
    )
    tiers = []
    for name, _, days, after in buckets:
        quantities = _by_measure((row["measure"], row[name]) for row in lots)
        if days is None:
            first, last = None, today - datetime.timedelta(days=1)
        else:
            first = today + datetime.timedelta(days=after + 1 if after else 0)
            last = today + datetime.timedelta(days=days)
        tiers.append(ExpiryTier(days, after, units[name], quantities, first, last))
    return tiers


@dataclass(frozen=True)
class LocationValue:
    location_id: int
    name: str
    kind: str
    kind_label: str
    units: int
    lot_quantities: tuple[Quantity, ...]
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
    lot_rows: dict[int, list[dict]] = defaultdict(list)
    for row in (
        LotCostLayer.objects.filter(balance__in=scope.lot_balances(), quantity__gt=0).order_by()
        .values(location_id=F("balance__location_id"), measure=F("balance__product__unit_of_measure"))
        .annotate(
            n=Sum("quantity"),
            owned=Sum(lot_value, filter=~consigned_lot, output_field=MONEY),
            consigned=Sum(lot_value, filter=consigned_lot, output_field=MONEY),
        )
    ):
        lot_rows[row["location_id"]].append(row)
    kinds = dict(Location.Kind.choices)
    rows = []
    for location in Location.objects.filter(pk__in=unit_rows.keys() | lot_rows.keys()).order_by("code"):
        units, lots = unit_rows.get(location.pk, {}), lot_rows.get(location.pk, [])
        rows.append(LocationValue(
            location.pk, location.name, location.kind, str(kinds.get(location.kind, location.kind)),
            units.get("n", 0), _by_measure((lot["measure"], lot["n"]) for lot in lots),
            _cents(units.get("owned")) + sum((_cents(lot["owned"]) for lot in lots), Decimal("0.00")),
            _cents(units.get("consigned")) + sum((_cents(lot["consigned"]) for lot in lots), Decimal("0.00")),
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
class WorkWaiting:
    """What is waiting for someone to act on it."""

    notes_to_accept: int  # delivery notes received, not accepted yet (验收)
    alerts_new: int  # raised, nobody has acknowledged them
    alerts_critical: int  # not resolved, critical


def work_waiting(scope: StockScope) -> WorkWaiting:
    """Two counting queries: delivery notes awaiting acceptance, and the unresolved alerts."""
    notes = visible_to(scope.user, DeliveryNote.objects.filter(status=DeliveryNote.Status.RECEIVED)).count()
    alerts = scope.alerts().aggregate(
        new=Count("pk", filter=Q(status=Alert.Status.OPEN)),
        critical=Count("pk", filter=~Q(status=Alert.Status.RESOLVED) & Q(severity=Alert.Severity.CRITICAL)),
    )
    return WorkWaiting(notes, alerts["new"], alerts["critical"])


@dataclass(frozen=True)
class WeekUse:
    first_day: datetime.date  # a Monday
    last_day: datetime.date
    uses: int
    value: Decimal  # at the unit price charged (the purchase price, 零差率)


def weekly_use(scope: StockScope, *, weeks: int, today: datetime.date | None = None) -> list[WeekUse]:
    """Use on patients per calendar week (Monday to Sunday, local days), the last `weeks` weeks up to
    the current one, oldest first; refunded uses do not count. One query (per day, folded into weeks)."""
    today = today or timezone.localdate()
    first = today - datetime.timedelta(days=today.weekday() + 7 * (weeks - 1))
    start, end = period_bounds(first, today)
    amount = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=MONEY)
    rows = (
        scope.consumptions().filter(occurred_at__gte=start, occurred_at__lt=end, refunded_at__isnull=True)
        .annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_default_timezone()))
        .order_by().values("day").annotate(uses=Count("pk"), value=Sum(amount, output_field=MONEY))
    )
    uses: dict[int, int] = defaultdict(int)
    values: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        week = (row["day"] - first).days // 7
        uses[week] += row["uses"]
        values[week] += _cents(row["value"])
    return [
        WeekUse(first + datetime.timedelta(weeks=week), first + datetime.timedelta(weeks=week, days=6), uses[week],
                _cents(values[week]))
        for week in range(weeks)
    ]


@dataclass(frozen=True)
class MonthExpiry:
    """Held stock expiring in one calendar month (`month` None: already expired)."""

    month: datetime.date | None  # the first of the month
    first_day: datetime.date | None  # the expiry dates counted, for the link to the stock list
    last_day: datetime.date
    units: int
    lot_quantities: tuple[Quantity, ...]
    value: Decimal  # at cost, own and consignment


def expiry_by_month(scope: StockScope, *, months: int, today: datetime.date | None = None) -> list[MonthExpiry]:
    """The expired stock, then this month (from today) and the next `months` - 1 months. Two queries,
    grouped by expiry date and folded into months here."""
    today = today or timezone.localdate()
    firsts = [_add_months(today.replace(day=1), n) for n in range(months + 1)]
    end = firsts[-1]  # the day after the last month shown

    def bucket(expiry: datetime.date) -> int:
        """0 for expired, n for the n-th month."""
        if expiry < today:
            return 0
        return next(n for n in range(months, 0, -1) if expiry >= firsts[n - 1])

    units = (
        scope.units().filter(status__in=HELD, expiry__lt=end).order_by().values("expiry")
        .annotate(n=Count("pk"), value=Sum("unit_cost", output_field=MONEY))
    )
    lot_value = ExpressionWrapper(F("quantity") * F("unit_cost"), output_field=MONEY)
    lots = (
        LotCostLayer.objects.filter(balance__in=scope.lot_balances(), quantity__gt=0, balance__expiry__lt=end)
        .order_by().values(expiry=F("balance__expiry"), measure=F("balance__product__unit_of_measure"))
        .annotate(n=Sum("quantity"), value=Sum(lot_value, output_field=MONEY))
    )
    counts: dict[int, int] = defaultdict(int)
    values: dict[int, Decimal] = defaultdict(Decimal)
    quantities: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for row in units:
        counts[bucket(row["expiry"])] += row["n"]
        values[bucket(row["expiry"])] += _cents(row["value"])
    for row in lots:
        quantities[bucket(row["expiry"])].append((row["measure"], row["n"]))
        values[bucket(row["expiry"])] += _cents(row["value"])
    result = [MonthExpiry(None, None, today - datetime.timedelta(days=1), counts[0], _by_measure(quantities[0]),
                          _cents(values[0]))]
    for n in range(1, months + 1):
        result.append(MonthExpiry(
            firsts[n - 1], max(firsts[n - 1], today), firsts[n] - datetime.timedelta(days=1), counts[n],
            _by_measure(quantities[n]), _cents(values[n]),
        ))
    return result


def _add_months(first: datetime.date, months: int) -> datetime.date:
    index = first.month - 1 + months
    return datetime.date(first.year + index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Dashboard:
    alerts: list[AlertCount]
    expiry: list[ExpiryTier]
    stock_value: StockValue
    consumption: ConsumptionToday
    cabinets: CabinetState
    his: HisFailures
    work: WorkWaiting
    use_by_week: list[WeekUse]
    expiry_months: list[MonthExpiry]

    @property
    def open_alerts(self) -> int:
        return sum(count.total for count in self.alerts)


WEEKS = 12  # of use shown on the dashboard's chart
EXPIRY_MONTHS = 6  # of expiry shown by month


def dashboard(scope: StockScope, *, tiers: tuple[int, ...], today: datetime.date | None = None) -> Dashboard:
    today = today or timezone.localdate()
    return Dashboard(
        alerts=open_alerts_by_kind(scope),
        expiry=near_expiry_by_tier(scope, tiers, today),
        stock_value=stock_value_by_location(scope),
        consumption=consumption_today(scope, today),
        cabinets=cabinets_online(scope),
        his=his_deliveries_failing(scope),
        work=work_waiting(scope),
        use_by_week=weekly_use(scope, weeks=WEEKS, today=today),
        expiry_months=expiry_by_month(scope, months=EXPIRY_MONTHS, today=today),
    )
