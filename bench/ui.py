"""Benchmark 5 — the people's pages at scale: the stock page and a unit's trace page.

Rendered in process with Django's test client, signed in as the warehouse keeper (the whole
hospital's stock: about 200,000 units held), DEBUG off, the way a browser asks for them:

- `/stock/` — the first page of units held (the default filter), soonest expiry first, with the
  filter form and the count;
- `/units/<id>/` — the trace of the unit with the longest history in the dataset (delivery,
  acceptance, transfers and every cabinet take and put-back, the use and its charge).

Baselines, in the same repetition: the SQL those pages cannot do without — for the stock page the
count of units held and their first 50 rows in the page's order with product, location and
supplier; for the trace the unit's movements with their locations — run through Django's
connection and fetched.
"""
from __future__ import annotations

import statistics
import time
from contextlib import nullcontext

from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from bench.cabinet import CABINET_CODE
from bench.figures import Figure
from bench.harness import Context

STOCK_SQL = [
    """SELECT count(*) FROM inventory_unit
        WHERE hospital_id = %(hospital)s AND status IN ('ACCEPTED', 'IN_STOCK', 'IN_CABINET', 'TAKEN')""",
    """SELECT u.*, p.internal_code, p.name, p.specification, l.name, s.name
         FROM inventory_unit u JOIN inventory_product p ON p.id = u.product_id
         LEFT JOIN inventory_location l ON l.id = u.location_id JOIN inventory_supplier s ON s.id = u.supplier_id
        WHERE u.hospital_id = %(hospital)s AND u.status IN ('ACCEPTED', 'IN_STOCK', 'IN_CABINET', 'TAKEN')
        ORDER BY u.expiry, p.internal_code, u.id LIMIT 50""",
]
TRACE_SQL = [
    """SELECT m.*, f.name, t.name FROM inventory_movement m
         LEFT JOIN inventory_location f ON f.id = m.from_location_id
         LEFT JOIN inventory_location t ON t.id = m.to_location_id
        WHERE m.unit_id = %(unit)s ORDER BY m.id""",
]


def run(context: Context) -> list[Figure]:
    # DEBUG off serves static files through the manifest, as production does after collectstatic
    # (run each time: it copies only what changed, and a new script must be in the manifest).
    static_root = context.options.results_dir / "static"
    with override_settings(STATIC_ROOT=static_root):
        call_command("collectstatic", interactive=False, verbosity=0)
        return _run(context)


def _run(context: Context) -> list[Figure]:
    from inventory.models import Unit, User
    from inventory.selectors.stock import HELD
    from inventory.simulation.scale_data import KEEPER

    hospital = context.hospital
    held = Unit.objects.filter(hospital=hospital, status__in=HELD).count()
    unit = _longest_history(hospital.pk)
    client = Client()
    client.force_login(User.objects.get(username=KEEPER))
    stock = Figure("ui", f"stock page /stock/ ({held:,} units held)", "ms", baseline_name="ms count + first page SQL")
    trace = Figure("ui", f"unit trace page /units/<id>/ ({unit[1]} movements)", "ms",
                   baseline_name="ms the unit's movements SQL")
    params = {"hospital": hospital.pk, "unit": unit[0]}
    for path in ("/stock/", f"/units/{unit[0]}/"):  # warm-up: templates, translations, first connections
        _render(client, path)
    for repetition in range(context.workload.repeat):
        with context.profiled("ui-stock") if repetition == 0 else nullcontext():
            stock_ms = _median(lambda: _render(client, "/stock/"), context.workload.ui_requests)
        stock.add(stock_ms, _median(lambda: _sql(STOCK_SQL, params), context.workload.ui_requests))
        with context.profiled("ui-trace") if repetition == 0 else nullcontext():
            trace_ms = _median(lambda: _render(client, f"/units/{unit[0]}/"), context.workload.ui_requests)
        trace.add(trace_ms, _median(lambda: _sql(TRACE_SQL, params), context.workload.ui_requests))
        context.log(f"ui repetition {repetition + 1}: stock {stock.samples[-1]:.0f} ms, trace {trace.samples[-1]:.0f} ms")
    stock.note = f"signed in as the warehouse keeper (whole hospital); {held:,} units held, first page of 50"
    trace.note = f"unit {unit[0]}, the longest history in the dataset"
    return [stock, trace]



def _longest_history(hospital: int) -> tuple[int, int]:
    with connection.cursor() as cursor:
        # Not a unit of the cabinet benchmark, whose history grows with every run.
        cursor.execute(
            "SELECT m.unit_id, count(*) FROM inventory_movement m JOIN inventory_unit u ON u.id = m.unit_id "
            "LEFT JOIN inventory_location l ON l.id = u.location_id "
            "WHERE m.hospital_id = %s AND l.code IS DISTINCT FROM %s "
            "GROUP BY m.unit_id ORDER BY count(*) DESC, m.unit_id LIMIT 1", [hospital, CABINET_CODE]
        )
        return cursor.fetchone()


def _render(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans")
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    if not response.content:
        raise RuntimeError(f"{path} rendered nothing")


def _sql(statements: list[str], params: dict) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)
            cursor.fetchall()


def _median(action, times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)
