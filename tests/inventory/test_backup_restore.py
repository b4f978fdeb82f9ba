"""Backup and restore (docs/operations.md): a pg_dump restored into a new database is the same books.

The reconciliation tests' three-day scenario (every kind of movement, billing, a stored run) is
written with the real services; the database is dumped with `pg_dump -Fc` and restored with
`pg_restore` into a new database, which the default connection then points at. There, the ledger folds to the same balances, the stored balance
tables agree, the stored run is the same, and reconciling the period again gives the same totals,
findings and 进销存 table.
"""
import datetime
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from inventory.models import Hospital, ReconciliationRun
from inventory.services.reconciliation import reconcile, run_reconciliation
from spd.celery import app as celery_app
from tests.inventory.test_reconciliation import Clock, build_scenario

# Balances recomputed from the ledger alone: what entered each place minus what left it.
LEDGER_FOLD = """
    SELECT product_id, unit_id, lot, location_id, SUM(delta) AS quantity
    FROM (
        SELECT product_id, unit_id, lot, to_location_id AS location_id, quantity AS delta
        FROM inventory_movement WHERE to_location_id IS NOT NULL
        UNION ALL
        SELECT product_id, unit_id, lot, from_location_id, -quantity
        FROM inventory_movement WHERE from_location_id IS NOT NULL
    ) AS flows
    GROUP BY product_id, unit_id, lot, location_id
    HAVING SUM(delta) <> 0
    ORDER BY product_id, unit_id NULLS FIRST, lot, location_id
"""
LEDGER_TOTALS = "SELECT kind, COUNT(*), SUM(quantity) FROM inventory_movement GROUP BY kind ORDER BY kind"
# The runbook's checks (docs/operations.md, "Verify a restored database"): rows where the stored
# balances and the ledger disagree.
LOTS_OFF_THE_LEDGER = """
    WITH flows AS (
        SELECT product_id, lot, to_location_id AS location_id, quantity AS delta
          FROM inventory_movement WHERE unit_id IS NULL AND to_location_id IS NOT NULL
        UNION ALL
        SELECT product_id, lot, from_location_id, -quantity
          FROM inventory_movement WHERE unit_id IS NULL AND from_location_id IS NOT NULL
    ), fold AS (
        SELECT product_id, lot, location_id, SUM(delta) AS quantity FROM flows GROUP BY 1, 2, 3
    )
    SELECT * FROM fold FULL JOIN inventory_lotbalance b USING (product_id, lot, location_id)
     WHERE COALESCE(fold.quantity, 0) <> COALESCE(b.quantity, 0)
"""
UNITS_OFF_THE_LEDGER = """
    SELECT u.id FROM inventory_unit u
      JOIN LATERAL (SELECT to_location_id FROM inventory_movement m
                     WHERE m.unit_id = u.id ORDER BY m.id DESC LIMIT 1) last ON TRUE
     WHERE u.status IN ('IN_STOCK', 'IN_CABINET')
       AND last.to_location_id IS DISTINCT FROM u.location_id
"""
STORED_BALANCES = [
    "SELECT product_id, lot, location_id, quantity FROM inventory_lotbalance ORDER BY product_id, lot, location_id",
    "SELECT id, status, location_id, owner FROM inventory_unit ORDER BY id",
]


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _libpq_args(settings_dict: dict) -> list[str]:
    return ["-h", settings_dict["HOST"] or "127.0.0.1", "-p", str(settings_dict["PORT"] or 5432),
            "-U", settings_dict["USER"]]


@contextmanager
def restored_copy(tmp_path) -> Iterator[str]:
    """Dump the test database and restore it into a new one, named by what this yields."""
    settings_dict = connection.settings_dict
    source, target = settings_dict["NAME"], f"{settings_dict['NAME']}_restored"
    dump = tmp_path / "spd.dump"
    subprocess.run(["pg_dump", *_libpq_args(settings_dict), "-Fc", "-f", str(dump), source], check=True)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(target)}")
        cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(target)}")
    try:
        subprocess.run(
            ["pg_restore", *_libpq_args(settings_dict), "--exit-on-error", "-d", target, str(dump)], check=True
        )
        yield target
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(target)}")


@contextmanager
def default_database(name: str) -> Iterator[None]:
    """Point the default connection at another database: the ORM and the services read that one."""
    settings_dict = connection.settings_dict
    original = settings_dict["NAME"]
    connection.close()
    settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        settings_dict["NAME"] = original


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_restored_dump_folds_to_the_same_ledger_and_reconciles_to_the_same_totals(
    hospital, warehouse, cath_lab_store, cabinet, operator, monkeypatch, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    scenario = build_scenario(hospital, warehouse, cath_lab_store, cabinet, operator, Clock(monkeypatch))
    period: tuple[datetime.date, datetime.date] = (scenario.d1, scenario.d3)
    stored = run_reconciliation(hospital=hospital, period_start=scenario.d3, period_end=scenario.d3)
    original = reconcile(hospital, *period)
    fold, totals = _rows(LEDGER_FOLD), _rows(LEDGER_TOTALS)
    balances = [_rows(sql) for sql in STORED_BALANCES]
    assert fold and original.table and stored.summary["findings"]["count"] > 0
    lot_kinds = {kind for kind, in _rows("SELECT DISTINCT kind FROM inventory_movement WHERE unit_id IS NULL")}
    assert {"RECEIPT", "TRANSFER", "CONSUME"} <= lot_kinds  # the fold is not a trivial one

    with restored_copy(tmp_path) as restored, default_database(restored):
        assert _rows(LEDGER_FOLD) == fold
        assert _rows(LEDGER_TOTALS) == totals
        assert [_rows(sql) for sql in STORED_BALANCES] == balances
        # The runbook's checks find exactly the one planted balance gone without a movement.
        off = _rows(LOTS_OFF_THE_LEDGER)
        assert [(row[0], row[2]) for row in off] == [(scenario.dressing.pk, cath_lab_store.pk)]
        assert _rows(UNITS_OFF_THE_LEDGER) == []
        copy = ReconciliationRun.objects.get(pk=stored.pk)
        assert (copy.summary, copy.csv_sha256) == (stored.summary, stored.csv_sha256)
        assert copy.findings.count() == stored.findings.count()
        again = reconcile(Hospital.objects.get(pk=hospital.pk), *period)

    assert again.summary["totals"] == original.summary["totals"]
    assert again.summary["findings"] == original.summary["findings"]
    assert again.table == original.table
    assert [(f.kind, f.product_id, f.unit_id, f.lot, f.amount) for f in again.findings] == [
        (f.kind, f.product_id, f.unit_id, f.lot, f.amount) for f in original.findings
    ]
