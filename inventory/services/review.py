"""Consumable review (耗材点评): the watched-item anomaly rule, the HIS revenue import and the 耗占比
red lines. The figures are read by inventory.selectors.review; see docs/review.md.
"""
import datetime
import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from inventory.errors import Problem, Refusal, Refused
from inventory.models import Alert, Department, DepartmentRevenue, Hospital, Product, RatioRedLine, WatchedItem
from inventory.selectors.review import Period, consumable_ratio, live_uses, median_and_mad, month_start
from inventory.services import alerts
from inventory.spreadsheets import read_table

MONTHS_OF_HISTORY = 6


def anomaly_k() -> Decimal:
    return Decimal(str(getattr(settings, "SPD_REVIEW_ANOMALY_K", 3)))


def anomaly_min_mad() -> Decimal:
    """The MAD used when the history is flat (MAD 0): without it any use above a constant median alerts."""
    return Decimal(str(getattr(settings, "SPD_REVIEW_ANOMALY_MIN_MAD", 1)))


def _add_months(day: datetime.date, months: int) -> datetime.date:
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Anomaly:
    product_id: int
    product: str
    by: str  # "department" or "doctor"
    who: str
    department_id: int | None
    month: datetime.date
    quantity: int
    median: Decimal
    mad: Decimal
    threshold: Decimal


def find_anomalies(*, hospital: Hospital, month: datetime.date) -> list[Anomaly]:
    """Watched products whose use (quantity) in `month`, per department and per doctor, exceeds the
    median of the 6 months before by more than k × MAD (SPD_REVIEW_ANOMALY_K, default 3; a MAD of 0
    counts as SPD_REVIEW_ANOMALY_MIN_MAD, default 1). Months without use count as 0."""
    month = month_start(month)
    first = _add_months(month, -MONTHS_OF_HISTORY)
    history = [_add_months(first, n) for n in range(MONTHS_OF_HISTORY)]
    watched = WatchedItem.objects.filter(hospital=hospital, is_active=True).values_list("product_id", flat=True)
    uses = live_uses(hospital).filter(product_id__in=watched).filter(
        Period(first, _add_months(month, 1) - datetime.timedelta(days=1)).window())
    k, floor = anomaly_k(), anomaly_min_mad()
    found = []
    for by, key, label in (("department", "department_id", "department__name"), ("doctor", "doctor", "doctor")):
        grid: dict[tuple, dict[datetime.date, int]] = {}
        names: dict[tuple, tuple[str, str]] = {}
        rows = (uses.exclude(**{key: ""}) if by == "doctor" else uses).annotate(m=TruncMonth("occurred_at")) \
            .values("product_id", "product__name", key, label, "m").annotate(quantity=Sum("quantity"))
        for row in rows:
            when = timezone.localtime(row["m"]).date() if isinstance(row["m"], datetime.datetime) else row["m"]
            subject = (row["product_id"], row[key])
            grid.setdefault(subject, {})[when] = row["quantity"]
            names[subject] = (row["product__name"], str(row[label]))
        for subject, months in grid.items():
            current = months.get(month, 0)
            median, mad = median_and_mad([Decimal(months.get(m, 0)) for m in history])
            threshold = median + k * max(mad, floor)
            if current > threshold:
                found.append(Anomaly(subject[0], names[subject][0], by, names[subject][1],
                                     subject[1] if by == "department" else None, month, current, median, mad,
                                     threshold))
    return found


def scan_use_anomalies(
    *, hospital: Hospital, month: datetime.date | None = None, now: datetime.datetime | None = None,
) -> alerts.ScanResult:
    """Raise a USE_ANOMALY alert per anomaly of `month` (default: the last complete month); resolve
    the open ones that no longer hold."""
    now = now or timezone.now()
    month = month_start(month or _add_months(month_start(timezone.localdate(now)), -1))
    specs = [
        alerts.AlertSpec(
            hospital.pk,
            f"use:{a.product_id}:{a.by}:{a.who}:{a.month:%Y-%m}"[:128],
            Alert.Severity.WARNING,
            f"{a.product}: {a.quantity} used in {a.month:%Y-%m} by {a.by} {a.who} "
            f"(6-month median {a.median}, threshold {a.threshold})",
            {"product_id": a.product_id, "by": a.by, "who": a.who, "month": f"{a.month:%Y-%m}",
             "quantity": a.quantity, "median": str(a.median), "mad": str(a.mad), "threshold": str(a.threshold)},
            {"product_id": a.product_id},
        )
        for a in find_anomalies(hospital=hospital, month=month)
    ]
    return alerts.sync_alerts(kind=Alert.Kind.USE_ANOMALY, specs=specs, scope=Q(hospital=hospital), now=now)


def scan_red_lines(
    *, hospital: Hospital, month: datetime.date | None = None, now: datetime.datetime | None = None,
) -> alerts.ScanResult:
    """Raise a RATIO_RED_LINE alert per department whose 耗占比 of `month` (default: the last complete
    month) is above its red line; resolve the others."""
    now = now or timezone.now()
    month = month_start(month or _add_months(month_start(timezone.localdate(now)), -1))
    specs = [
        alerts.AlertSpec(
            hospital.pk, f"ratio:{row.department_id}:{row.month:%Y-%m}", Alert.Severity.WARNING,
            f"{row.department} {row.month:%Y-%m}: 耗占比 {row.percent}% above the red line {row.red_line}%",
            {"department_id": row.department_id, "month": f"{row.month:%Y-%m}", "percent": str(row.percent),
             "red_line": str(row.red_line), "cost": str(row.cost), "revenue": str(row.revenue)},
        )
        for row in consumable_ratio(hospital=hospital, first_month=month, last_month=month) if row.over_red_line
    ]
    return alerts.sync_alerts(kind=Alert.Kind.RATIO_RED_LINE, specs=specs, scope=Q(hospital=hospital), now=now)


# --- revenue import -------------------------------------------------------------------------------

REVENUE_ALIASES = {"科室编码": "department", "科室": "department", "月份": "month", "医疗收入": "revenue",
                   "department_code": "department"}
REVENUE_COLUMNS = ("department", "month", "revenue")


@dataclass(frozen=True)
class RevenueImport:
    batch: str
    rows: int
    created: int
    updated: int

    def as_dict(self) -> dict:
        return {"batch": self.batch, "rows": self.rows, "created": self.created, "updated": self.updated}


def parse_revenue_file(uploaded: IO[bytes], filename: str) -> list[dict]:
    """Rows of a revenue file: CSV (UTF-8 or GBK), XLSX (first sheet) or JSON (a list of objects).
    Columns: department (科室编码), month (月份, YYYY-MM), revenue (医疗收入: medical revenue excluding
    drugs and consumables)."""
    limit = int(getattr(settings, "SPD_HIS_SETTLEMENT_MAX_BYTES", 20 * 1024 * 1024))
    data = uploaded.read(limit + 1)
    if len(data) > limit:
        raise Refused(Refusal.FILE_TOO_LARGE, limit=limit)
    name = filename.lower()
    if name.endswith(".json"):
        try:
            rows = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(Refusal.FILE_UNREADABLE, format="JSON") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise Refused(Refusal.FILE_UNREADABLE, format="JSON")
        return [{"_row": n, **{REVENUE_ALIASES.get(k, k): v for k, v in row.items()}} for n, row in enumerate(rows, 1)]
    table = [(n, row) for n, row in read_table(data, filename) if any(str(c or "").strip() for c in row)]
    if not table:
        raise Refused(Refusal.FILE_EMPTY)
    header = [REVENUE_ALIASES.get(str(c or "").strip().lstrip("\ufeff"), str(c or "").strip().lower())
              for c in table[0][1]]
    missing = [c for c in REVENUE_COLUMNS if c not in header]
    if missing:
        raise Refused(Refusal.FILE_COLUMNS_MISSING, columns=", ".join(missing))
    return [{"_row": n, **{h: (row[i] if i < len(row) else None) for i, h in enumerate(header) if h in REVENUE_COLUMNS}}
            for n, row in table[1:]]


def _month(value: object) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.replace(day=1)
    text = str(value or "").strip().replace("/", "-")
    try:
        return datetime.datetime.strptime(text[:7], "%Y-%m").date()
    except ValueError:
        return None


@dataclass(frozen=True)
class RevenueRow:
    """A checked row of a revenue file, as the import preview lists it."""

    number: object
    department: Department | None
    month: datetime.date | None
    revenue: Decimal | None

    @property
    def valid(self) -> bool:
        return self.department is not None and self.month is not None and self.revenue is not None


def check_revenue_rows(*, hospital: Hospital, rows: list[dict]) -> tuple[list[RevenueRow], list[Problem]]:
    """Each row read and checked (the import preview): department code of the hospital, month
    YYYY-MM, revenue a non-negative amount; every problem names its row and column. Writes nothing."""
    departments = {d.code: d for d in Department.objects.filter(hospital=hospital)}
    problems, checked = [], []
    for row in rows:
        number = row.get("_row")
        department = departments.get(str(row.get("department") or "").strip())
        month = _month(row.get("month"))
        try:
            revenue = Decimal(str(row.get("revenue")).strip().replace(",", ""))
            if not revenue.is_finite() or revenue < 0 or revenue >= Decimal("1e14"):
                raise InvalidOperation
            revenue = revenue.quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            revenue = None
        for name, value in (("department", department), ("month", month), ("revenue", revenue)):
            if value is None:
                problems.append(Problem(Refusal.REVENUE_ROW_INVALID, {"row": number, "field": name}, {"row": number}))
        checked.append(RevenueRow(number, department, month, revenue))
    return checked, problems


def import_revenue(*, hospital: Hospital, rows: list[dict], batch: str = "") -> RevenueImport:
    """Create or replace each department's monthly revenue; every row is checked first and a file
    with any bad row changes nothing (each problem names its row and column)."""
    batch = batch or uuid.uuid4().hex[:12]
    if not rows:
        raise Refused(Refusal.FILE_EMPTY)
    checked, problems = check_revenue_rows(hospital=hospital, rows=rows)
    if problems:
        raise Refused(problems)
    clean = {(row.department.pk, row.month): row.revenue for row in checked}
    created = updated = 0
    with transaction.atomic():
        for (department_id, month), revenue in sorted(clean.items()):
            _, new = DepartmentRevenue.objects.update_or_create(
                hospital=hospital, department_id=department_id, month=month,
                defaults={"revenue": revenue, "imported_at": timezone.now(), "import_batch": batch},
            )
            created, updated = created + new, updated + (not new)
    return RevenueImport(batch, len(rows), created, updated)


def import_revenue_file(*, hospital: Hospital, uploaded: IO[bytes] | bytes, filename: str) -> RevenueImport:
    if isinstance(uploaded, bytes):
        uploaded = io.BytesIO(uploaded)
    report = import_revenue(hospital=hospital, rows=parse_revenue_file(uploaded, filename))
    scan_red_lines(hospital=hospital)
    return report


# --- watched items and red lines, as kept on their pages ----------------------------------------------

def watch_product(*, hospital: Hospital, product_id: int, reason: str = "") -> WatchedItem:
    """Put a product of the hospital on the watched list (again active if it was taken off)."""
    with transaction.atomic():
        product = Product.objects.filter(hospital=hospital, pk=product_id).first()
        if product is None:
            raise Refused(Refusal.NOT_FOUND, what="product")
        item, _ = WatchedItem.objects.update_or_create(hospital=hospital, product=product,
                                                       defaults={"reason": reason[:200], "is_active": True})
        return item


def unwatch_product(*, hospital: Hospital, item_id: int) -> WatchedItem:
    """Take a product off the watched list: kept inactive, so its alerts' history still names it."""
    with transaction.atomic():
        item = WatchedItem.objects.select_for_update().filter(hospital=hospital, pk=item_id).first()
        if item is None:
            raise Refused(Refusal.NOT_FOUND, what="watched item")
        item.is_active = False
        item.save(update_fields=["is_active"])
        return item


def set_red_line(*, hospital: Hospital, department_id: int, max_percent: Decimal | None) -> RatioRedLine | None:
    """Set a department's 耗占比 red line (%), or remove it with None; the last complete month is
    scanned again at once, so that an alert follows the new line."""
    with transaction.atomic():
        department = Department.objects.filter(hospital=hospital, pk=department_id).first()
        if department is None:
            raise Refused(Refusal.NOT_FOUND, what="department")
        if max_percent is None:
            RatioRedLine.objects.filter(hospital=hospital, department=department).delete()
            line = None
        else:
            line, _ = RatioRedLine.objects.update_or_create(hospital=hospital, department=department,
                                                            defaults={"max_percent": max_percent})
    scan_red_lines(hospital=hospital)
    return line
