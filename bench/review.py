"""Benchmark 7 — the consumable review (耗材点评) and a recall over the benchmark year.

Review: `inventory.selectors.review.monthly_trend(dimension="department")` over the dataset's whole
year with every department a line — the department × month review, as its page, PDF and export
read it. Baseline: the bare `SELECT month, department_id, SUM(unit_price × quantity) … GROUP BY`
over the live uses of the year, fetched. Target: ≤ 3× the bare GROUP BY.

Recall: the lot with the most uses in the year (units and lot quantities) is recalled as the recall
page does it — `open_recall` lists and locks every affected unit, lot balance and use — and listed as
the recall page lists it: `services.recall.refresh` then `selectors.recall.recall_listing` (the
progress, every item with where it is now, every patient encounter, surgery, doctor and department,
as model instances the page renders), inside a transaction rolled back afterwards: the dataset is
left as it was found. The regulator's export (`export_rows`) of the same recall is timed beside it
as a note. Template rendering is not included. Target: listed in < 1 s.
"""
from __future__ import annotations

import datetime
import time
from contextlib import nullcontext

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench.figures import Figure, Target
from bench.harness import Context

MONTHLY_SQL = """
    SELECT date_trunc('month', occurred_at AT TIME ZONE %(zone)s) AS month, department_id,
           SUM(unit_price * quantity)
      FROM inventory_consumption
     WHERE hospital_id = %(hospital)s AND refunded_at IS NULL AND occurred_at >= %(start)s AND occurred_at < %(end)s
     GROUP BY 1, 2
"""
BUSIEST_LOT_SQL = """
    SELECT product_id, lot, COUNT(*) FROM inventory_consumption
     WHERE hospital_id = %(hospital)s AND lot <> '' AND refunded_at IS NULL
     GROUP BY product_id, lot ORDER BY COUNT(*) DESC, product_id, lot LIMIT 1
"""


class _Rollback(Exception):
    pass


def run(context: Context) -> list[Figure]:
    from inventory.models import Department, Product, Recall, User
    from inventory.selectors.recall import recall_listing
    from inventory.selectors.review import Period, monthly_trend
    from inventory.services.recall import export_rows, open_recall, refresh
    from inventory.simulation.scale_data import KEEPER

    hospital = context.hospital
    first_day, last_day = context.period
    period = Period(first_day, last_day)
    params = {"zone": settings.TIME_ZONE, "hospital": hospital.pk, "start": _midnight(first_day),
              "end": _midnight(last_day + datetime.timedelta(days=1))}
    departments = Department.objects.filter(hospital=hospital).count()
    review = Figure(
        "review", "department × month review of the year (monthly_trend)", "s",
        baseline_name="s bare GROUP BY month, department",
        target=Target("≤ 3× the bare GROUP BY", lambda f: f.ratio is not None and f.ratio <= 3),
    )
    for repetition in range(context.workload.repeat):
        bare, cells = _bare(params)
        with context.profiled("review") if repetition == 0 else nullcontext():
            started = time.perf_counter()
            trend = monthly_trend(hospital=hospital, dimension="department", period=period, top=departments)
            seconds = time.perf_counter() - started
        review.add(seconds, bare)
        context.log(f"review repetition {repetition + 1}: bare {bare * 1000:.0f} ms ({cells} cells), "
                    f"review {seconds * 1000:.0f} ms")
    review.note = f"{len(trend.lines)} departments × {len(trend.months)} months; {cells} non-empty cells"

    recall_figure = Figure(
        "review", "recall of the busiest lot of the year: opened (locked) and listed", "s",
        target=Target("< 1 s", lambda f: f.median is not None and f.median < 1),
    )
    with connection.cursor() as cursor:
        cursor.execute(BUSIEST_LOT_SQL, {"hospital": hospital.pk})
        product_id, lot, uses = cursor.fetchone()
    product = Product.objects.get(pk=product_id)
    user = User.objects.get(hospital=hospital, username=KEEPER)  # a warehouse keeper opens and works recalls
    listed, exported, export_seconds = 0, 0, []
    for repetition in range(context.workload.repeat):
        try:
            with transaction.atomic():
                with context.profiled("recall") if repetition == 0 else nullcontext():
                    started = time.perf_counter()
                    recall = open_recall(hospital=hospital, user=user, scope=Recall.Scope.LOT, product=product,
                                         lot=lot, reason="bench", source=Recall.Source.MANUFACTURER,
                                         notice_date=last_day)
                    refresh(recall)
                    listing = recall_listing(user, recall)
                    seconds = time.perf_counter() - started
                listed = len(listing.stock_items) + len(listing.used_items)
                started = time.perf_counter()
                exported = len(export_rows(recall))
                export_seconds.append(time.perf_counter() - started)
                raise _Rollback
        except _Rollback:
            pass
        recall_figure.add(seconds)
        context.log(f"recall repetition {repetition + 1}: {seconds * 1000:.0f} ms opened and listed ({listed} items), "
                    f"export {export_seconds[-1] * 1000:.0f} ms ({exported} rows)")
    recall_figure.note = (f"lot {lot} of product {product_id}: {uses} uses in the year, {listed} items listed as the "
                          f"recall page lists them; the regulator's export of it "
                          f"{sorted(export_seconds)[len(export_seconds) // 2] * 1000:.0f} ms ({exported} rows)")
    return [review, recall_figure]


def _midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))



def _bare(params: dict) -> tuple[float, int]:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(MONTHLY_SQL, params)
        rows = cursor.fetchall()
        return time.perf_counter() - started, len(rows)
