"""Benchmark 6 — replenishment suggestions (主动配送) for the whole hospital, against a bare read of on-hand.

Set up (not timed): a par level for every department store and smart cabinet × every product that
has been held there (units or lot balances, any status) — the products each location actually
stocks — with a minimum and target around what it holds, so that a share of them is short; and
open requisitions to those locations (approved, some partly dispatched), so that the in-transit and
on-order sums have rows to add. Written straight with SQL (history triggers off, as the dataset
loader does) and removed afterwards: the dataset is left as it was found.

Timed: `inventory.services.replenishment.compute_suggestions(hospital=)` — one INSERT … SELECT
over par levels, on-hand, requisition flows and purchase units, committed.

Baseline: the bare SQL that reads on-hand per location × product (units on hand counted, lot
balances summed, expired stock left out, as the suggestion counts it), fetched into Python.
Target: ≤ 3× the baseline.
"""
from __future__ import annotations

import time
from contextlib import nullcontext

from django.db import connection, transaction
from django.utils import timezone

from bench.figures import Figure, Target
from bench.harness import Context

ON_HAND_SQL = """
    SELECT location_id, product_id, SUM(n) FROM (
        SELECT location_id, product_id, COUNT(*) AS n FROM inventory_unit
         WHERE hospital_id = %(hospital)s AND status IN ('IN_STOCK', 'IN_CABINET')
           AND (expiry IS NULL OR expiry >= %(today)s)
         GROUP BY location_id, product_id
        UNION ALL
        SELECT location_id, product_id, SUM(quantity) AS n FROM inventory_lotbalance
         WHERE hospital_id = %(hospital)s AND (expiry IS NULL OR expiry >= %(today)s)
         GROUP BY location_id, product_id
    ) held
    GROUP BY location_id, product_id
"""
# Every store and cabinet × every product it has held; minimum and target around what it holds now.
PAR_LEVELS_SQL = """
    INSERT INTO inventory_parlevel (location_id, product_id, minimum, target, maximum, updated_at)
    SELECT pairs.location_id, pairs.product_id, 2 + pairs.product_id %% 5, 6 + pairs.product_id %% 11, NULL, now()
      FROM (
        SELECT DISTINCT u.location_id, u.product_id FROM inventory_unit u
          JOIN inventory_location l ON l.id = u.location_id
         WHERE u.hospital_id = %(hospital)s AND l.kind IN ('DEPARTMENT_STORE', 'SMART_CABINET')
        UNION
        SELECT b.location_id, b.product_id FROM inventory_lotbalance b
          JOIN inventory_location l ON l.id = b.location_id
         WHERE b.hospital_id = %(hospital)s AND l.kind IN ('DEPARTMENT_STORE', 'SMART_CABINET')
      ) pairs
    ON CONFLICT DO NOTHING
"""
REQUISITIONS = 200
LINES_PER_REQUISITION = 10


def run(context: Context) -> list[Figure]:
    from inventory.services.replenishment import compute_suggestions

    figure = Figure(
        "replenishment", "suggestions for the whole hospital (compute_suggestions)", "s",
        baseline_name="s bare on-hand per location × product",
        target=Target("≤ 3× the bare on-hand read", lambda f: f.ratio is not None and f.ratio <= 3),
    )
    hospital = context.hospital
    params = {"hospital": hospital.pk, "today": timezone.localdate()}
    levels, lines = _set_up(hospital.pk)
    try:
        for repetition in range(context.workload.repeat):
            bare, rows = _bare(params)
            with context.profiled("replenishment") if repetition == 0 else nullcontext():
                started = time.perf_counter()
                suggestions = compute_suggestions(hospital=hospital)
                seconds = time.perf_counter() - started
            figure.add(seconds, bare)
            context.log(f"replenishment repetition {repetition + 1}: bare {bare * 1000:.0f} ms ({rows:,} rows), "
                        f"suggestions {seconds * 1000:.0f} ms ({suggestions:,})")
        figure.note = (f"{levels:,} par levels, {lines:,} open requisition lines; {suggestions:,} suggestions; "
                       f"on-hand rows {rows:,}")
    finally:
        _tear_down(hospital.pk)
    return [figure]



def _bare(params: dict) -> tuple[float, int]:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(ON_HAND_SQL, params)
        rows = cursor.fetchall()
        return time.perf_counter() - started, len(rows)


def _set_up(hospital_id: int) -> tuple[int, int]:
    """Par levels and open requisitions of the benchmark (history triggers off, as the loader writes)."""
    from inventory.models import ParLevel, Requisition, RequisitionLine, User

    _tear_down(hospital_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(PAR_LEVELS_SQL, {"hospital": hospital_id})
        levels = list(ParLevel.objects.filter(location__hospital_id=hospital_id)
                      .values_list("location_id", "location__department_id", "product_id").order_by("pk")
                      [: REQUISITIONS * LINES_PER_REQUISITION])
        user = User.objects.filter(hospital_id=hospital_id).order_by("pk").first()
        now = timezone.now()
        requisitions = Requisition.objects.bulk_create([
            Requisition(hospital_id=hospital_id, department_id=levels[index * LINES_PER_REQUISITION][1],
                        location_id=levels[index * LINES_PER_REQUISITION][0], number=f"BENCH-RQ-{index:05d}",
                        status=Requisition.Status.PICKING if index % 2 else Requisition.Status.APPROVED,
                        created_by=user, created_at=now, submitted_at=now, updated_at=now, note="bench")
            for index in range(len(levels) // LINES_PER_REQUISITION)
        ])
        made = RequisitionLine.objects.bulk_create([
            RequisitionLine(requisition=requisition, product_id=levels[index * LINES_PER_REQUISITION + offset][2],
                            requested_quantity=4, approved_quantity=4, picked_quantity=2 if index % 2 else 0,
                            dispatched_quantity=2 if index % 2 else 0)
            for index, requisition in enumerate(requisitions) for offset in range(LINES_PER_REQUISITION)
            # a requisition goes to one location: only that location's levels
            if levels[index * LINES_PER_REQUISITION + offset][0] == requisition.location_id
        ])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inventory_parlevel; ANALYZE inventory_requisitionline; ANALYZE inventory_requisition")
    return ParLevel.objects.filter(location__hospital_id=hospital_id).count(), len(made)


def _tear_down(hospital_id: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM inventory_replenishmentsuggestion WHERE hospital_id = %s", [hospital_id])
        cursor.execute("DELETE FROM inventory_parlevelproposal WHERE hospital_id = %s", [hospital_id])
        cursor.execute("""DELETE FROM inventory_requisitionline WHERE requisition_id IN
                          (SELECT id FROM inventory_requisition WHERE hospital_id = %s AND note = 'bench')""",
                       [hospital_id])
        cursor.execute("DELETE FROM inventory_requisition WHERE hospital_id = %s AND note = 'bench'", [hospital_id])
        cursor.execute("""DELETE FROM inventory_parlevel WHERE location_id IN
                          (SELECT id FROM inventory_location WHERE hospital_id = %s)""", [hospital_id])
