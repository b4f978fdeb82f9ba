"""Consumable review (耗材点评): use and cost grouped by a dimension over a period, with growth.

One set-based GROUP BY over the live (not refunded) consumptions: the period, the period before it
(same length, 环比) and the same period a year earlier (同比) are summed in the same query with
filtered aggregates. Amounts are purchase prices × quantity (零差率: what the patient is billed).
"""
import datetime
import statistics
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext

from inventory.models import Consumption, DepartmentRevenue, HisSettlementLine, Hospital, RatioRedLine
from inventory.selectors.reconciliation import cents

ZERO = Decimal("0.00")
AMOUNT = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=DecimalField(max_digits=16, decimal_places=2))

# dimension → (key column, label column)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "department": ("department_id", "department__name"),
    "clinical_team": ("clinical_team_id", "clinical_team__name"),
    "doctor": ("doctor", "doctor"),
    "procedure": ("surgery_name", "surgery_name"),
    "product": ("product_id", "product__name"),
    "product_class": ("product__category", "product__category"),
    "supplier": ("unit__supplier_id", "unit__supplier__name"),
}


@dataclass(frozen=True)
class Period:
    start: datetime.date  # first day
    end: datetime.date  # last day (inclusive)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        return Period(self.start - datetime.timedelta(days=self.days), self.start - datetime.timedelta(days=1))

    def year_before(self) -> "Period":
        return Period(_year_back(self.start), _year_back(self.end))

    def window(self, prefix: str = "occurred_at") -> Q:
        return Q(**{f"{prefix}__gte": _moment(self.start),
                    f"{prefix}__lt": _moment(self.end + datetime.timedelta(days=1))})


def _year_back(day: datetime.date) -> datetime.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _moment(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def growth(now: Decimal, before: Decimal) -> Decimal | None:
    """Growth in % from `before` to `now`; None when there was nothing before."""
    if not before:
        return None
    return ((now - before) / before * 100).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class ReviewRow:
    key: object
    label: str
    quantity: int
    amount: Decimal
    uses: int
    previous_amount: Decimal
    year_ago_amount: Decimal

    @property
    def period_growth(self) -> Decimal | None:
        return growth(self.amount, self.previous_amount)

    @property
    def year_growth(self) -> Decimal | None:
        return growth(self.amount, self.year_ago_amount)


def live_uses(hospital: Hospital, *, high_value_only: bool = False, departments: QuerySet | None = None) -> QuerySet:
    uses = Consumption.objects.filter(hospital=hospital, refunded_at__isnull=True)
    if high_value_only:
        uses = uses.filter(product__is_high_value=True)
    if departments is not None:
        uses = uses.filter(department__in=departments)
    return uses


def review(
    *, hospital: Hospital, dimension: str, period: Period, high_value_only: bool = False,
    departments: QuerySet | None = None,
) -> list[ReviewRow]:
    """Use and cost per `dimension` value in `period`, with the previous period and a year before.

    Rows are ordered by amount, highest first; only values used in one of the three periods appear.
    """
    key, label = DIMENSIONS[dimension]
    now, before, year_ago = period.window(), period.previous().window(), period.year_before().window()
    rows = (
        live_uses(hospital, high_value_only=high_value_only, departments=departments)
        .filter(now | before | year_ago)
        .values(key, label)
        .annotate(
            used_quantity=Coalesce(Sum("quantity", filter=now), 0),
            uses=Coalesce(Sum(Value(1), filter=now & Q(part_of__isnull=True)), 0),
            amount=Coalesce(Sum(AMOUNT, filter=now), ZERO),
            previous_amount=Coalesce(Sum(AMOUNT, filter=before), ZERO),
            year_ago_amount=Coalesce(Sum(AMOUNT, filter=year_ago), ZERO),
        )
        .order_by("-amount", key)
    )
    return [
        ReviewRow(row[key], value_label(dimension, row[label]), row["used_quantity"],
                  cents(row["amount"]), row["uses"], cents(row["previous_amount"]), cents(row["year_ago_amount"]))
        for row in rows
    ]


def value_label(dimension: str, value: object) -> str:
    """How a dimension's value is shown: a use without a clinical team is 未分组 (not grouped)."""
    if value not in (None, ""):
        return str(value)
    return gettext("Not grouped") if dimension == "clinical_team" else "—"


# --- trends per month -----------------------------------------------------------------------------

def months_of(period: Period) -> list[datetime.date]:
    """The first days of the months `period` touches, in order."""
    months, month = [], month_start(period.start)
    while month <= period.end:
        months.append(month)
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    return months


@dataclass(frozen=True)
class TrendLine:
    key: object
    label: str
    amounts: list[Decimal]  # one per month of `Trend.months`


@dataclass(frozen=True)
class Trend:
    months: list[datetime.date]
    total: TrendLine
    lines: list[TrendLine]  # the top values of the dimension


def monthly_trend(
    *, hospital: Hospital, dimension: str, period: Period, high_value_only: bool = False, top: int = 5,
    departments: QuerySet | None = None,
) -> Trend:
    """The cost of each month of `period`: all uses, and the `top` values of `dimension` by amount
    over the whole period. One GROUP BY month and value (months without use are 0)."""
    key, label = DIMENSIONS[dimension]
    months = months_of(period)
    rows = (
        live_uses(hospital, high_value_only=high_value_only, departments=departments).filter(period.window())
        .annotate(month=TruncMonth("occurred_at")).values("month", key, label)
        .annotate(amount=Sum(AMOUNT)).order_by()
    )
    cells: dict[object, dict[datetime.date, Decimal]] = {}
    labels: dict[object, str] = {}
    for row in rows:
        month = timezone.localtime(row["month"]).date() if isinstance(row["month"], datetime.datetime) else row["month"]
        cells.setdefault(row[key], {})[month] = cells.get(row[key], {}).get(month, ZERO) + row["amount"]
        labels[row[key]] = value_label(dimension, row[label])
    total = {month: sum((by_month.get(month, ZERO) for by_month in cells.values()), ZERO) for month in months}
    ranked = sorted(cells, key=lambda k: (-sum(cells[k].values()), labels[k]))[:top]
    return Trend(
        months, TrendLine(None, gettext("All"), [total[m] for m in months]),
        [TrendLine(k, labels[k], [cells[k].get(m, ZERO) for m in months]) for k in ranked],
    )


# --- per-surgery cost by procedure ----------------------------------------------------------------

def percentile(values: list[Decimal], fraction: float) -> Decimal:
    """Linear interpolation between the closest ranks (PostgreSQL percentile_cont, numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * Decimal(str(position - low))
    return value.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Surgery:
    surgery_id: str
    procedure: str
    doctor: str
    department: str
    cost: Decimal
    outlier: bool


@dataclass(frozen=True)
class DoctorDistribution:
    doctor: str
    count: int
    median: Decimal
    p90: Decimal
    costs: list[Decimal]
    outliers: int


@dataclass(frozen=True)
class Procedure:
    procedure: str
    count: int
    median: Decimal
    p90: Decimal
    fence: Decimal  # above it a surgery is an outlier
    doctors: list[DoctorDistribution]
    surgeries: list[Surgery]


def outlier_fence(costs: list[Decimal]) -> Decimal:
    """Tukey's upper fence: Q3 + k × IQR (k = SPD_REVIEW_OUTLIER_IQR, default 1.5)."""
    k = Decimal(str(getattr(settings, "SPD_REVIEW_OUTLIER_IQR", 1.5)))
    q1, q3 = percentile(costs, 0.25), percentile(costs, 0.75)
    return (q3 + k * (q3 - q1)).quantize(Decimal("0.01"))


def surgery_costs(
    *, hospital: Hospital, period: Period, high_value_only: bool = False, procedure: str = "",
    departments: QuerySet | None = None,
) -> list[Procedure]:
    """Consumable cost of each surgery (one GROUP BY surgery), then per procedure (the same surgery
    name) the distribution per doctor: count, median, p90; surgeries above the fence are outliers."""
    uses = live_uses(hospital, high_value_only=high_value_only, departments=departments).filter(
        period.window()).exclude(surgery_id="")
    if procedure:
        uses = uses.filter(surgery_name=procedure)
    rows = (
        uses.values("surgery_id", "surgery_name", "doctor", "department__name")
        .annotate(cost=Sum(AMOUNT)).order_by("surgery_name", "doctor", "surgery_id")
    )
    by_procedure: dict[str, list[dict]] = {}
    for row in rows:
        by_procedure.setdefault(row["surgery_name"] or "—", []).append(row)
    result = []
    for name, surgeries in by_procedure.items():
        costs = [row["cost"] for row in surgeries]
        fence = outlier_fence(costs)
        listed = [Surgery(row["surgery_id"], name, row["doctor"] or "—", row["department__name"], row["cost"],
                          row["cost"] > fence) for row in surgeries]
        doctors = []
        for doctor in sorted({s.doctor for s in listed}):
            mine = [s for s in listed if s.doctor == doctor]
            values = [s.cost for s in mine]
            doctors.append(DoctorDistribution(
                doctor, len(mine), percentile(values, 0.5), percentile(values, 0.9), sorted(values),
                sum(1 for s in mine if s.outlier)))
        result.append(Procedure(name, len(listed), percentile(costs, 0.5), percentile(costs, 0.9), fence,
                                doctors, listed))
    result.sort(key=lambda p: (-p.count, p.procedure))
    return result


def median_and_mad(values: list[Decimal]) -> tuple[Decimal, Decimal]:
    median = Decimal(statistics.median(values))
    return median, Decimal(statistics.median([abs(v - median) for v in values]))


# --- 耗占比 ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RatioRow:
    department_id: int
    department: str
    month: datetime.date
    cost: Decimal
    revenue: Decimal | None
    red_line: Decimal | None

    @property
    def percent(self) -> Decimal | None:
        """耗占比 in %: consumable cost / medical revenue × 100 (= cost per 100 yuan of revenue)."""
        if not self.revenue:
            return None
        return (self.cost / self.revenue * 100).quantize(Decimal("0.01"))

    @property
    def per_100(self) -> Decimal | None:
        return self.percent

    @property
    def over_red_line(self) -> bool:
        return self.red_line is not None and self.percent is not None and self.percent > self.red_line


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def consumable_ratio(
    *, hospital: Hospital, first_month: datetime.date, last_month: datetime.date, departments: QuerySet | None = None,
) -> list[RatioRow]:
    """Per department and month: consumable cost (live uses), imported revenue, 耗占比 and red line."""
    last_day = (month_start(last_month) + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
    period = Period(month_start(first_month), last_day)
    costs = (
        live_uses(hospital, departments=departments).filter(period.window())
        .annotate(month=TruncMonth("occurred_at")).values("month", "department_id", "department__name")
        .annotate(cost=Sum(AMOUNT))
    )
    revenues = DepartmentRevenue.objects.filter(hospital=hospital, month__gte=period.start, month__lte=period.end)
    if departments is not None:
        revenues = revenues.filter(department__in=departments)
    red_lines = dict(RatioRedLine.objects.filter(hospital=hospital).values_list("department_id", "max_percent"))
    cells: dict[tuple[int, datetime.date], dict] = {}
    for row in costs:
        month = timezone.localtime(row["month"]).date() if isinstance(row["month"], datetime.datetime) else row["month"]
        cells[(row["department_id"], month)] = {"name": row["department__name"], "cost": row["cost"], "revenue": None}
    for revenue in revenues.select_related("department"):
        cell = cells.setdefault((revenue.department_id, revenue.month),
                                {"name": revenue.department.name, "cost": ZERO, "revenue": None})
        cell["revenue"] = revenue.revenue
    return [
        RatioRow(dept, cell["name"], month, cell["cost"], cell["revenue"], red_lines.get(dept))
        for (dept, month), cell in sorted(cells.items(), key=lambda item: (item[0][1], item[1]["name"]))
    ]


# --- 医保 settlement top N ------------------------------------------------------------------------

def top_settled(*, hospital: Hospital, period: Period, limit: int = 20) -> list[dict]:
    """The products (by 医保耗材编码) with the highest settled amount in the imported HIS lines."""
    return list(
        HisSettlementLine.objects.filter(hospital=hospital).filter(period.window("settled_at"))
        .exclude(nhsa_code="").values("nhsa_code")
        .annotate(amount=Sum("amount"), quantity=Sum("quantity"))
        .order_by("-amount", "nhsa_code")[:limit]
    )
