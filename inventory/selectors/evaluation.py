"""Read paths of supplier evaluation: the computed indicators of a period, a run's matrix and
results, the trend of a supplier over successive runs, and what a supplier's own users may see.

Computed indicators come from the hospital's records for the run's period, never typed in:

- on-time rate and fill rate (%): `selectors.purchasing.delivery_performance` over the orders
  promised in the period (none promised: no value — the supplier cannot be rated on delivery);
- rejected at acceptance (%): quantity on delivery lines of the supplier rejected at acceptance /
  quantity decided, decisions taken in the period (0 when nothing was decided);
- upheld complaints: written complaints about the supplier received in the period and upheld;
- certificate lapses: the supplier's certificates that ran out in the period (the day after
  `valid_to` falls in it) with no certificate of the same kind valid on that day.
"""
import datetime
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from inventory.models import (
    AcceptanceRecord,
    Certificate,
    Complaint,
    EvaluatedSupplier,
    EvaluationRun,
    EvaluationValue,
    Hospital,
    Indicator,
    IndicatorSet,
    PurchaseOrder,
    Supplier,
    User,
)
from inventory.selectors.purchasing import delivery_performance
from inventory.selectors.settlements import period_bounds

Source = Indicator.Source
COMPUTED_SOURCES = [source for source in Source if source != Source.ENTERED]
TREND_RUNS = 8  # how many finalised runs a trend goes back


@dataclass(frozen=True)
class ComputedValue:
    value: Decimal | None  # None: nothing to compute it from in the period
    basis: str  # how it came about, e.g. "7/8 lines on time"


def computed_values(
    *, hospital: Hospital, suppliers: list[Supplier], start: datetime.date, end: datetime.date
) -> dict[tuple[int, str], ComputedValue]:
    """Every computed indicator of every supplier over the period, keyed by (supplier id, source):
    a handful of queries whatever the number of suppliers."""
    ids = [supplier.pk for supplier in suppliers]
    found: dict[tuple[int, str], ComputedValue] = {}
    performance = {row.supplier.pk: row for row in delivery_performance(hospital=hospital, start=start, end=end)}
    for supplier_id in ids:
        row = performance.get(supplier_id)
        if row is None:
            found[(supplier_id, Source.ON_TIME_RATE)] = ComputedValue(None, "")
            found[(supplier_id, Source.FILL_RATE)] = ComputedValue(None, "")
            continue
        found[(supplier_id, Source.ON_TIME_RATE)] = ComputedValue(
            row.on_time_rate, f"{row.on_time_lines}/{row.lines}")
        found[(supplier_id, Source.FILL_RATE)] = ComputedValue(
            row.fill_rate, f"{row.received_quantity}/{row.ordered_quantity}")

    since, until = period_bounds(start, end)
    decided = (
        AcceptanceRecord.objects.filter(
            line__note__hospital=hospital, line__note__supplier_id__in=ids, decided_at__gte=since, decided_at__lt=until,
        )
        .values("line__note__supplier_id")
        .annotate(total=Sum("line__quantity"),
                  rejected=Sum("line__quantity", filter=Q(decision=AcceptanceRecord.Decision.REJECTED)))
        .order_by()
    )
    rejections = {row["line__note__supplier_id"]: (row["rejected"] or 0, row["total"] or 0) for row in decided}
    for supplier_id in ids:
        rejected, total = rejections.get(supplier_id, (0, 0))
        rate = (Decimal(rejected * 100) / total).quantize(Decimal("0.1")) if total else Decimal("0.0")
        found[(supplier_id, Source.REJECTION_RATE)] = ComputedValue(rate, f"{rejected}/{total}")

    upheld = dict(
        Complaint.objects.filter(
            hospital=hospital, supplier_id__in=ids, outcome=Complaint.Outcome.UPHELD,
            received_on__gte=start, received_on__lte=end,
        ).values("supplier_id").annotate(count=Count("pk")).order_by().values_list("supplier_id", "count")
    )
    for supplier_id in ids:
        count = upheld.get(supplier_id, 0)
        found[(supplier_id, Source.UPHELD_COMPLAINTS)] = ComputedValue(Decimal(count), "")

    lapses = certificate_lapses(supplier_ids=ids, start=start, end=end)
    for supplier_id in ids:
        days = lapses.get(supplier_id, [])
        found[(supplier_id, Source.CERTIFICATE_LAPSES)] = ComputedValue(
            Decimal(len(days)), ", ".join(day.isoformat() for day in days))
    return found


def certificate_lapses(*, supplier_ids: list[int], start: datetime.date, end: datetime.date) -> dict[int, list[datetime.date]]:
    """Per supplier, the days in the period on which one of its certificates had run out and no
    certificate of the same kind took over (one query)."""
    one_day = datetime.timedelta(days=1)
    certificates = list(
        Certificate.objects.filter(supplier_id__in=supplier_ids, valid_to__gte=start - one_day, valid_to__lt=end)
        .values_list("pk", "supplier_id", "kind", "valid_from", "valid_to")
    )
    kinds = {(supplier_id, kind) for _, supplier_id, kind, _, _ in certificates}
    cover: dict[tuple[int, str], list[tuple[datetime.date, datetime.date]]] = defaultdict(list)
    for supplier_id, kind, valid_from, valid_to in Certificate.objects.filter(
        supplier_id__in={supplier_id for supplier_id, _ in kinds}, kind__in={kind for _, kind in kinds},
    ).values_list("supplier_id", "kind", "valid_from", "valid_to"):
        cover[(supplier_id, kind)].append((valid_from, valid_to))
    found: dict[int, list[datetime.date]] = defaultdict(list)
    for _, supplier_id, kind, _, valid_to in sorted(certificates, key=lambda row: (row[4], row[0])):
        day = valid_to + one_day
        if not any(valid_from <= day <= until for valid_from, until in cover[(supplier_id, kind)]):
            found[supplier_id].append(day)
    return found


def suppliers_with_orders(*, hospital: Hospital, start: datetime.date, end: datetime.date) -> list[Supplier]:
    """The suppliers with a purchase order promised in the period: a run's default participants."""
    ids = PurchaseOrder.objects.filter(hospital=hospital, promised_date__gte=start, promised_date__lte=end).values(
        "supplier_id")
    return list(Supplier.objects.filter(pk__in=ids).order_by("name", "pk"))


# --- a run ---------------------------------------------------------------------------------------


def scored_indicators(indicator_set: IndicatorSet) -> list[Indicator]:
    """The indicators a run scores, in the set's order: each first-level indicator's children, or the
    first-level indicator itself when it has none."""
    indicators = list(indicator_set.indicators.select_related("parent").order_by("position", "pk"))
    parents = {indicator.parent_id for indicator in indicators if indicator.parent_id}
    tops = [indicator for indicator in indicators if indicator.parent_id is None]
    scored = []
    for top in tops:
        if top.pk in parents:
            scored.extend(indicator for indicator in indicators if indicator.parent_id == top.pk)
        else:
            scored.append(top)
    return scored


def first_level(indicator_set: IndicatorSet) -> list[Indicator]:
    return list(indicator_set.indicators.filter(parent=None).order_by("position", "pk"))


@dataclass(frozen=True)
class Cell:
    indicator: Indicator
    value: EvaluationValue | None


@dataclass(frozen=True)
class MatrixRow:
    participant: EvaluatedSupplier
    cells: list[Cell]


def run_matrix(run: EvaluationRun) -> tuple[list[Indicator], list[MatrixRow]]:
    """The run's indicators and one row per supplier (ranked ones first, by rank), two queries."""
    indicators = scored_indicators(run.indicator_set)
    values = {(value.supplier_id, value.indicator_id): value
              for value in run.values.select_related("entered_by")}
    participants = list(run.participants.select_related("supplier").order_by("rank", "supplier__name", "pk"))
    return indicators, [
        MatrixRow(participant, [Cell(indicator, values.get((participant.supplier_id, indicator.pk)))
                                for indicator in indicators])
        for participant in participants
    ]


@dataclass(frozen=True)
class TrendPoint:
    run: EvaluationRun
    score: Decimal
    rank: int
    of: int


def supplier_trends(*, hospital_id: int, supplier_ids: list[int], until: datetime.date | None = None,
                    runs: int = TREND_RUNS) -> tuple[list[EvaluationRun], dict[int, list[TrendPoint]]]:
    """The last `runs` finalised runs of the hospital (ending by `until`) in which any of the
    suppliers took part, oldest first, and each supplier's score and rank in them."""
    finalised = EvaluationRun.objects.filter(hospital_id=hospital_id, status=EvaluationRun.Status.FINALISED,
                                             participants__supplier_id__in=supplier_ids).distinct()
    if until is not None:
        finalised = finalised.filter(period_end__lte=until)
    chosen = list(finalised.order_by("-period_end", "-pk")[:runs])
    chosen.reverse()
    sizes = dict(EvaluatedSupplier.objects.filter(run__in=chosen).values("run_id").annotate(size=Count("pk"))
                 .order_by().values_list("run_id", "size"))
    trends: dict[int, list[TrendPoint]] = defaultdict(list)
    by_pk = {run.pk: run for run in chosen}
    for row in EvaluatedSupplier.objects.filter(run__in=chosen, supplier_id__in=supplier_ids).order_by(
            "run__period_end", "run_id"):
        trends[row.supplier_id].append(TrendPoint(by_pk[row.run_id], row.score, row.rank, sizes[row.run_id]))
    return chosen, trends


# --- the supplier portal -------------------------------------------------------------------------


def portal_evaluations(user: User) -> QuerySet:
    """A supplier user's own places in finalised runs, across the hospitals it serves; nothing else."""
    if getattr(user, "supplier_id", None) is None:
        return EvaluatedSupplier.objects.none()
    return EvaluatedSupplier.objects.filter(
        supplier_id=user.supplier_id, run__status=EvaluationRun.Status.FINALISED,
    ).select_related("run__hospital").annotate(of=Count("run__participants", distinct=True))


def own_values(participant: EvaluatedSupplier) -> list[EvaluationValue]:
    """The supplier's own values in the run, in the set's order (never another supplier's)."""
    order = {indicator.pk: place for place, indicator in enumerate(scored_indicators(participant.run.indicator_set))}
    values = EvaluationValue.objects.filter(run_id=participant.run_id, supplier_id=participant.supplier_id).select_related(
        "indicator__parent")
    return sorted(values, key=lambda value: order.get(value.indicator_id, 0))
