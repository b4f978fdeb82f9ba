"""Benchmark 3 — nightly reconciliation over the generated year, against a bare aggregation.

Timed: `inventory.services.reconciliation.run_reconciliation(hospital=, period_start=, period_end=,
rerun=True)` for the whole generated year, and for its last day — a whole run each time: the
findings, the 进销存 table, the CSV, XLSX and PDF reports with their hashes, all committed.

Baseline: one bare SQL statement over the same movements — every movement up to the period's end
(what both the year's closing and the day's opening-plus-flows rest on), summed per product ×
location, into the location it enters and out of the one it leaves — fetched into Python:

    SELECT product_id, location_id, SUM(quantity) FROM (
        SELECT product_id, to_location_id AS location_id, quantity … WHERE to_location_id IS NOT NULL
        UNION ALL
        SELECT product_id, from_location_id, -quantity … WHERE from_location_id IS NOT NULL
    ) GROUP BY product_id, location_id

The one-sided variant (`GROUP BY product_id, to_location_id` alone, one pass) is recorded in the
JSON as well.
"""
from __future__ import annotations

import contextlib
import datetime
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext

from django.db import connection
from django.utils import timezone

from bench.figures import Figure, Target
from bench.harness import Context

NET_SQL = """
    SELECT product_id, location_id, SUM(quantity) FROM (
        SELECT product_id, to_location_id AS location_id, quantity FROM inventory_movement
         WHERE hospital_id = %(hospital)s AND occurred_at < %(end)s AND to_location_id IS NOT NULL
        UNION ALL
        SELECT product_id, from_location_id, -quantity FROM inventory_movement
         WHERE hospital_id = %(hospital)s AND occurred_at < %(end)s AND from_location_id IS NOT NULL
    ) moves
    GROUP BY product_id, location_id
"""
ONE_SIDED_SQL = """
    SELECT product_id, to_location_id, SUM(quantity) FROM inventory_movement
     WHERE hospital_id = %(hospital)s AND occurred_at < %(end)s
     GROUP BY product_id, to_location_id
"""


def run(context: Context) -> list[Figure]:
    baseline = "s bare GROUP BY product, location"
    year = Figure("reconciliation", "full-year run (run_reconciliation; reports queued)", "s", baseline_name=baseline,
                  target=Target("≤ 3× the bare aggregation", lambda f: f.ratio is not None and f.ratio <= 3))
    day = Figure("reconciliation", "one-day run (last day of the year)", "s", baseline_name=baseline,
                 target=Target("a few seconds (≤ 5 s)", lambda f: f.median is not None and f.median <= 5))
    # The computation alone (nothing written), and the reports, which a worker renders after the run.
    year_computed = Figure("reconciliation", "  the computation alone (reconcile(), year)", "s", baseline_name=baseline)
    day_computed = Figure("reconciliation", "  the computation alone (reconcile(), day)", "s", baseline_name=baseline)
    reports = Figure("reconciliation", "then its reports (task: CSV + XLSX + PDF, year)", "s", baseline_name=baseline)
    from inventory.models import Finding
    from inventory.selectors.flow_table import flow_row_count
    from inventory.services.reconciliation import reconcile, run_reconciliation
    from inventory.services.reports import ensure_reports

    hospital = context.hospital
    start, end = context.period
    start = max(start, end - datetime.timedelta(days=364))  # the last year of a longer history
    from inventory.selectors.settlements import period_bounds

    _, end_instant = period_bounds(start, end)
    one_sided = []
    for repetition in range(context.workload.recon_repeat):
        bare, rows = _bare(NET_SQL, hospital.pk, end_instant)
        one_sided.append(_bare(ONE_SIDED_SQL, hospital.pk, end_instant)[0])
        with context.profiled("reconciliation-year") if repetition == 0 else nullcontext(), _reports_by_worker():
            seconds, run = _timed(lambda: run_reconciliation(hospital=hospital, period_start=start, period_end=end,
                                                             rerun=True))
        year.add(seconds, bare)
        year_computed.add(_timed(lambda: reconcile(hospital, start, end))[0], bare)
        with context.profiled("reconciliation-reports") if repetition == 0 else nullcontext():
            reports.add(_timed(lambda run=run: ensure_reports(run.pk))[0], bare)
        run.refresh_from_db()
        findings = Counter(run.findings.values_list("kind", flat=True))
        context.log(f"reconciliation repetition {repetition + 1}: bare {bare:.2f} s ({rows:,} rows), year "
                    f"{seconds:.1f} s, {sum(findings.values())} findings")
        with context.profiled("reconciliation-day") if repetition == 0 else nullcontext(), _reports_by_worker():
            seconds, day_run = _timed(lambda: run_reconciliation(hospital=hospital, period_start=end, period_end=end,
                                                                 rerun=True))
        day.add(seconds, bare)
        ensure_reports(day_run.pk)  # the worker's part, not timed here
        day_computed.add(_timed(lambda: reconcile(hospital, end, end))[0], bare)
        context.log(f"reconciliation repetition {repetition + 1}: day {seconds:.1f} s")
    mismatches = findings.get(Finding.Kind.INVENTORY_MISMATCH, 0)
    inventory_rows = flow_row_count(run)
    year.note = (f"{sum(findings.values())} findings ({dict(sorted(findings.items()))}); 进销存 table {inventory_rows:,} "
                 f"rows; reports CSV {_size(run.report_csv)}, XLSX {_size(run.report_xlsx)}, PDF "
                 f"{_size(run.report_pdf)}; one-sided GROUP BY {min(one_sided):.2f} s")
    day.note = f"{day_run.findings.count()} findings, 进销存 table {flow_row_count(day_run):,} rows"
    if mismatches:
        year.note += f"; {mismatches} INVENTORY_MISMATCH findings: the generated data is inconsistent"
    _forget_reports(run.hospital_id)
    snapshots = _with_monthly_snapshots(context, hospital, start, end, end_instant)
    return [year, year_computed, reports, day, day_computed, *snapshots]


def _with_monthly_snapshots(context: Context, hospital, start: datetime.date, end: datetime.date,
                            end_instant: datetime.datetime) -> list[Figure]:
    """Close every month of the history (月结: a snapshot each), then time the runs again: a day's
    opening now comes from the last snapshot and the movements after it. The closed months are
    removed afterwards, so that the dataset is again as generated (and the next run measures the
    figures without snapshots first)."""
    baseline = "s bare GROUP BY product, location"
    closing = Figure("reconciliation", "close one month (close_month: snapshot + 月报), median of the months", "s",
                     baseline_name=baseline)
    day = Figure("reconciliation", "one-day run with monthly snapshots", "s", baseline_name=baseline,
                 target=Target("≤ 1 s", lambda f: f.median is not None and f.median <= 1))
    day_computed = Figure("reconciliation", "  the computation alone (reconcile(), day, snapshots)", "s",
                          baseline_name=baseline)
    year = Figure("reconciliation", "full-year run with monthly snapshots", "s", baseline_name=baseline,
                  target=Target("≤ 5× the bare aggregation", lambda f: f.ratio is not None and f.ratio <= 5))
    from django.contrib.auth.models import Group

    from inventory.models import ClosedPeriod, Movement, PeriodBalance, PeriodFlow, PeriodPlaceBalance, Role, User
    from inventory.services.period_close import close_month, first_day, next_month
    from inventory.services.reconciliation import reconcile, run_reconciliation
    from inventory.services.reports import ensure_reports

    operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"hospital": hospital, "password": "!"})
    operator.groups.add(Group.objects.get_or_create(name=Role.SPD_OPERATOR.value)[0])
    first = Movement.objects.filter(hospital=hospital).order_by("occurred_at").values_list("occurred_at", flat=True)[0]
    month = first_day(timezone.localdate(first))
    # The close wants every day reconciled: the last year is (the year run above); older history,
    # in year-long runs.
    covered_from = start
    while covered_from > month:
        chunk_start = max(month, covered_from - datetime.timedelta(days=365))
        run_reconciliation(hospital=hospital, period_start=chunk_start, period_end=covered_from - datetime.timedelta(days=1))
        covered_from = chunk_start
    months = 0
    bare, _rows = _bare(NET_SQL, hospital.pk, end_instant)
    with _reports_by_worker():
        while next_month(month) <= timezone.localdate():
            seconds, _ = _timed(lambda month=month: close_month(hospital=hospital, month=month, user=operator,
                                                                acknowledge_his_backlog=True))
            closing.add(seconds, bare)
            months += 1
            month = next_month(month)
        context.log(f"reconciliation: {months} months closed, median {closing.median:.2f} s")
        for repetition in range(context.workload.recon_repeat):
            bare, _rows = _bare(NET_SQL, hospital.pk, end_instant)
            with context.profiled("reconciliation-day-snapshots") if repetition == 0 else nullcontext():
                seconds, day_run = _timed(lambda: run_reconciliation(hospital=hospital, period_start=end,
                                                                     period_end=end, rerun=True))
            day.add(seconds, bare)
            ensure_reports(day_run.pk)
            day_computed.add(_timed(lambda: reconcile(hospital, end, end))[0], bare)
            seconds, year_run = _timed(lambda: run_reconciliation(hospital=hospital, period_start=start,
                                                                  period_end=end, rerun=True))
            year.add(seconds, bare)
            context.log(f"reconciliation with snapshots, repetition {repetition + 1}: day {day.samples[-1]:.2f} s, "
                        f"year {seconds:.1f} s")
    since = ClosedPeriod.objects.filter(hospital=hospital).order_by("-ends_at").first()
    ledger = Movement.objects.filter(hospital=hospital).count()
    day.note = (f"{months} months closed, ledger {ledger:,} movements ({context.options.years} year(s): compare the "
                f"ratio with the one-year dataset's, target ≤ 1.2×); the day's opening reads the snapshot of "
                f"{since.month:%Y-%m} ({PeriodBalance.objects.filter(period=since).count():,} rows) and "
                f"{Movement.objects.filter(hospital=hospital, occurred_at__gte=since.ends_at).count():,} movements after it")
    for period in ClosedPeriod.objects.filter(hospital=hospital):
        if period.report_csv and period.report_csv.storage.exists(period.report_csv.name):
            period.report_csv.storage.delete(period.report_csv.name)
    PeriodBalance.objects.filter(period__hospital=hospital).delete()
    PeriodFlow.objects.filter(period__hospital=hospital).delete()
    PeriodPlaceBalance.objects.filter(period__hospital=hospital).delete()
    ClosedPeriod.objects.filter(hospital=hospital).delete()
    _forget_reports(hospital.pk)
    return [closing, day, day_computed, year]



@contextlib.contextmanager
def _reports_by_worker() -> Iterator[None]:
    """As in production, where a Celery worker renders a run's reports after it commits: the run's
    message is dropped here, and the benchmark renders the reports itself, timed on their own."""
    from inventory.tasks import render_reconciliation_reports

    conf = render_reconciliation_reports.app.conf
    eager, delay = conf.task_always_eager, render_reconciliation_reports.delay
    conf.task_always_eager = False
    render_reconciliation_reports.delay = lambda run_pk: None
    try:
        yield
    finally:
        conf.task_always_eager, render_reconciliation_reports.delay = eager, delay


def _timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _bare(sql: str, hospital: int, end: datetime.datetime) -> tuple[float, int]:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, {"hospital": hospital, "end": end})
        rows = cursor.fetchall()
        return time.perf_counter() - started, len(rows)


def _size(field_file) -> str:
    try:
        return f"{field_file.size / 1e6:.1f} MB"
    except (ValueError, OSError):
        return "?"


def _forget_reports(hospital_id: int) -> None:
    """Delete the report files of superseded benchmark runs (the rows stay, as the audit trail wants)."""
    from inventory.models import ReconciliationRun

    for run in ReconciliationRun.objects.filter(hospital_id=hospital_id, is_current=False):
        for field_file in (run.report_csv, run.report_xlsx, run.report_pdf):
            if field_file and field_file.storage.exists(field_file.name):
                field_file.storage.delete(field_file.name)
